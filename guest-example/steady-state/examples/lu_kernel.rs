//! `lu_kernel N REPS`: prints the median seconds of one LU factorisation of steady-state's
//! n×n Jacobian. Built for wasm32-wasip2, it is a WASI command the benchmark harness runs to
//! time the kernel inside the sandbox; natively the harness calls the same function.

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    match (args.next(), args.next()) {
        (Some(Ok(n)), Some(Ok(reps))) if n > 0 => {
            println!("{}", example_steady_state::lu_kernel_seconds(n, reps));
        }
        _ => {
            eprintln!("usage: lu_kernel N REPS");
            std::process::exit(2);
        }
    }
}
