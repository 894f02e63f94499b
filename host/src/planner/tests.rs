use super::*;

fn caps(list: &[&str]) -> Capabilities {
    let mut c = Capabilities::default();
    for name in list {
        match *name {
            "jacobian" => c.jacobian = true,
            "jvp" => c.jvp = true,
            "vjp" => c.vjp = true,
            "abstract_eval" => c.abstract_eval = true,
            "batched_jvp" => c.batched_jvp = true,
            "batched_vjp" => c.batched_vjp = true,
            other => panic!("unknown capability {other}"),
        }
    }
    c
}

fn check(exports: &[&str], endpoint: Endpoint, expected: Option<Route>) {
    assert_eq!(
        plan(endpoint, caps(exports)),
        expected,
        "{endpoint} with {exports:?}"
    );
}

#[test]
fn apply_only_component_serves_apply_and_abstract_eval() {
    check(&[], Endpoint::Apply, Some(Route::Native));
    check(&[], Endpoint::AbstractEval, Some(Route::ApplyOnZeros));
    for e in [
        Endpoint::Jacobian,
        Endpoint::Jvp,
        Endpoint::Vjp,
        Endpoint::BatchedJvp,
        Endpoint::BatchedVjp,
    ] {
        check(&[], e, None);
    }
}

#[test]
fn rosenbrock_batches_are_looped() {
    let r = ["jacobian", "jvp", "vjp", "abstract_eval"];
    check(&r, Endpoint::BatchedJvp, Some(Route::Looped));
    check(&r, Endpoint::BatchedVjp, Some(Route::Looped));
    check(&r, Endpoint::Jvp, Some(Route::Native));
    check(&r, Endpoint::AbstractEval, Some(Route::Native));
}

#[test]
fn steady_state_batches_are_native_unless_hidden() {
    let s = caps(&[
        "jacobian",
        "jvp",
        "vjp",
        "abstract_eval",
        "batched_jvp",
        "batched_vjp",
    ]);
    assert_eq!(plan(Endpoint::BatchedJvp, s), Some(Route::Native));
    assert_eq!(plan(Endpoint::BatchedVjp, s), Some(Route::Native));
    assert_eq!(
        plan(Endpoint::BatchedJvp, s.without_batched()),
        Some(Route::Looped)
    );
    assert_eq!(
        plan(Endpoint::BatchedVjp, s.without_batched()),
        Some(Route::Looped)
    );
}

#[test]
fn jvp_and_vjp_come_from_the_jacobian_when_not_exported() {
    check(&["jacobian"], Endpoint::Jvp, Some(Route::FromJacobian));
    check(&["jacobian"], Endpoint::Vjp, Some(Route::FromJacobian));
    check(
        &["jacobian"],
        Endpoint::BatchedJvp,
        Some(Route::FromJacobian),
    );
    check(
        &["jacobian"],
        Endpoint::BatchedVjp,
        Some(Route::FromJacobian),
    );
    // jvp from a jacobian that is itself assembled from vjp basis vectors.
    check(&["vjp"], Endpoint::Jvp, Some(Route::FromJacobian));
}

#[test]
fn single_products_use_the_batched_export_when_alone() {
    check(&["batched_jvp"], Endpoint::Jvp, Some(Route::BatchedExport));
    check(&["batched_vjp"], Endpoint::Vjp, Some(Route::BatchedExport));
}

#[test]
fn jacobian_is_assembled_from_whichever_products_exist() {
    check(
        &["jvp"],
        Endpoint::Jacobian,
        Some(Route::Basis {
            forward: true,
            reverse: false,
        }),
    );
    check(
        &["batched_vjp"],
        Endpoint::Jacobian,
        Some(Route::Basis {
            forward: false,
            reverse: true,
        }),
    );
    check(
        &["jvp", "vjp"],
        Endpoint::Jacobian,
        Some(Route::Basis {
            forward: true,
            reverse: true,
        }),
    );
    check(
        &["jacobian", "jvp"],
        Endpoint::Jacobian,
        Some(Route::Native),
    );
}

#[test]
fn basis_direction_needs_fewer_vectors() {
    let both = caps(&["jvp", "vjp"]);
    assert_eq!(basis_direction(both, 3, 10), Some(Direction::Forward));
    assert_eq!(basis_direction(both, 10, 3), Some(Direction::Reverse));
    assert_eq!(
        basis_direction(caps(&["jvp"]), 10, 3),
        Some(Direction::Forward)
    );
    assert_eq!(
        basis_direction(caps(&["jvp", "batched_vjp"]), 4, 4),
        Some(Direction::Reverse)
    );
    assert_eq!(basis_direction(caps(&[]), 4, 4), None);
}
