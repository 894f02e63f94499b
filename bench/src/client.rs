//! The one HTTP client every server is measured through.
//!
//! hyper's pooled client with keep-alive, reused across requests and shared by all contenders,
//! so client overhead is the same for every server and connection setup is paid once. The
//! harness is synchronous; this wraps tokio runtimes and blocks on them.
//!
//! One request at a time goes through a current-thread runtime: the calling thread drives the
//! connection itself. On a multi-threaded runtime hyper's connection task runs on a worker, so
//! every request would add two client-side thread wake-ups (caller → worker → caller) to the
//! latency being measured, the same absolute cost for every server, which flattens their
//! ratio. Closed-loop load ([`Client::saturate`]) needs parallelism and has its own runtime and
//! connection pool.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A response the harness cares about: status, the routing headers and the whole body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    /// `Tesseract-Route`, set by tesseract-wasm only.
    pub route: Option<String>,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON, or an error quoting the start of it.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            let head = String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).to_string();
            format!("response is not JSON: {head}")
        })
    }
}

type Http = HyperClient<HttpConnector, Full<Bytes>>;

pub struct Client {
    /// Sequential requests: [`Client::post`], [`Client::get`].
    rt: tokio::runtime::Runtime,
    http: Http,
    /// [`Client::saturate`]. A pool's connections belong to the runtime they were opened on,
    /// so each runtime has its own.
    load_rt: tokio::runtime::Runtime,
    load_http: Http,
}

impl Client {
    /// # Errors
    /// When the tokio runtime cannot start.
    pub fn new() -> anyhow::Result<Client> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Two workers: enough to keep 32 connections busy without taking the servers' cores.
        let load_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(Client {
            rt,
            http: pooled(),
            load_rt,
            load_http: pooled(),
        })
    }

    async fn send(
        http: &Http,
        method: Method,
        url: &str,
        body: Bytes,
        accept: &str,
    ) -> anyhow::Result<Reply> {
        let req = Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(Full::new(body))?;
        let resp = http.request(req).await?;
        let status = resp.status();
        let route = resp
            .headers()
            .get("tesseract-route")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            route,
            body,
        })
    }

    /// POSTs `body` and returns the reply whatever its status.
    ///
    /// # Errors
    /// On connection or protocol errors.
    pub fn post_any(&self, url: &str, body: &Bytes, accept: &str) -> anyhow::Result<Reply> {
        self.rt.block_on(Self::send(
            &self.http,
            Method::POST,
            url,
            body.clone(),
            accept,
        ))
    }

    /// POSTs `body` and fails unless the answer is 200.
    ///
    /// # Errors
    /// On connection errors and non-200 answers (quoting the body).
    pub fn post(&self, url: &str, body: &Bytes, accept: &str) -> anyhow::Result<Reply> {
        let reply = self.post_any(url, body, accept)?;
        ok(url, reply)
    }

    /// GET `url`, any status.
    ///
    /// # Errors
    /// On connection errors.
    pub fn get(&self, url: &str) -> anyhow::Result<Reply> {
        self.rt.block_on(Self::send(
            &self.http,
            Method::GET,
            url,
            Bytes::new(),
            "application/json",
        ))
    }

    /// Closed-loop load: `connections` clients, each sending `body` again as soon as its
    /// previous answer arrived, for `duration`. Returns the number of 200 answers.
    ///
    /// # Errors
    /// On the first failed request.
    pub fn saturate(
        &self,
        url: &str,
        body: &Bytes,
        connections: usize,
        duration: Duration,
    ) -> anyhow::Result<u64> {
        self.load_rt.block_on(async {
            let deadline = Instant::now() + duration;
            let mut tasks = Vec::with_capacity(connections);
            for _ in 0..connections {
                let (http, url, body) = (self.load_http.clone(), url.to_owned(), body.clone());
                tasks.push(tokio::spawn(async move {
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        let reply =
                            Self::send(&http, Method::POST, &url, body.clone(), "application/json")
                                .await?;
                        ok(&url, reply)?;
                        done += 1;
                    }
                    anyhow::Ok(done)
                }));
            }
            let mut total = 0;
            for t in tasks {
                total += t.await??;
            }
            Ok(total)
        })
    }
}

/// A keep-alive pool whose connections are spawned on the runtime that opens them.
fn pooled() -> Http {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(50))
        .pool_max_idle_per_host(64)
        .build(connector)
}

fn ok(url: &str, reply: Reply) -> anyhow::Result<Reply> {
    if reply.status != StatusCode::OK {
        let head = String::from_utf8_lossy(&reply.body[..reply.body.len().min(400)]).to_string();
        bail!("POST {url} answered {}: {head}", reply.status);
    }
    Ok(reply)
}
