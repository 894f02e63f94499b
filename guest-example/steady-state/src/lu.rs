//! Dense LU with partial pivoting, factorised in place in the caller's buffer.
//!
//! faer's `PartialPivLu::new` copies the matrix into a fresh `Mat`, factorises it, then copies
//! the factors out again into separate `L` and `U` matrices. Those two n×n copies (and their
//! allocations and zero-fills) were ~11% of the factorisation's time at n = 256 inside wasm
//! (`tesseract-wasm-bench lu`; see BENCHMARKS.md). Here the buffer that holds J becomes the
//! packed factors: L strictly below the diagonal (unit diagonal implied), U on and above it.
//! faer's triangular solves read only their own triangle, so both solves take the same buffer.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::{factor, solve};
use faer::perm::PermRef;
use faer::{MatMut, MatRef, Par};

/// `J = Pᵀ·L·U` for a square column-major J.
#[derive(Debug, Clone)]
pub struct Lu {
    n: usize,
    /// Column-major n×n: L strictly below the diagonal, U on and above it.
    factors: Vec<f64>,
    perm_forward: Vec<usize>,
    perm_inverse: Vec<usize>,
}

impl Lu {
    /// Factorises the n×n column-major `matrix` in place and keeps it as the factors.
    ///
    /// # Panics
    /// When `matrix.len() != n * n`.
    pub fn factor(mut matrix: Vec<f64>, n: usize) -> Lu {
        assert_eq!(matrix.len(), n * n, "LU of a non-square buffer");
        let mut perm_forward = vec![0usize; n];
        let mut perm_inverse = vec![0usize; n];
        let params = Default::default();
        let mut scratch = MemBuffer::new(factor::lu_in_place_scratch::<usize, f64>(
            n,
            n,
            Par::Seq,
            params,
        ));
        factor::lu_in_place(
            MatMut::from_column_major_slice_mut(&mut matrix, n, n),
            &mut perm_forward,
            &mut perm_inverse,
            Par::Seq,
            MemStack::new(&mut scratch),
            params,
        );
        Lu {
            n,
            factors: matrix,
            perm_forward,
            perm_inverse,
        }
    }

    fn parts(&self) -> (MatRef<'_, f64>, PermRef<'_, usize>) {
        (
            MatRef::from_column_major_slice(&self.factors, self.n, self.n),
            PermRef::new_checked(&self.perm_forward, &self.perm_inverse, self.n),
        )
    }

    /// `rhs ← J⁻¹·rhs` for an n×k column-major `rhs`.
    pub fn solve_in_place(&self, rhs: MatMut<'_, f64>) {
        let (lu, perm) = self.parts();
        let mut scratch = MemBuffer::new(solve::solve_in_place_scratch::<usize, f64>(
            self.n,
            rhs.ncols(),
            Par::Seq,
        ));
        solve::solve_in_place(lu, lu, perm, rhs, Par::Seq, MemStack::new(&mut scratch));
    }

    /// `rhs ← J⁻ᵀ·rhs` for an n×k column-major `rhs`.
    pub fn solve_transpose_in_place(&self, rhs: MatMut<'_, f64>) {
        let (lu, perm) = self.parts();
        let mut scratch = MemBuffer::new(solve::solve_transpose_in_place_scratch::<usize, f64>(
            self.n,
            rhs.ncols(),
            Par::Seq,
        ));
        solve::solve_transpose_in_place(lu, lu, perm, rhs, Par::Seq, MemStack::new(&mut scratch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A matrix that needs pivoting: a zero (1,1) entry and rows of very different sizes.
    fn matrix(n: usize) -> Vec<f64> {
        (0..n * n)
            .map(|k| {
                let (i, j) = (k % n, k / n);
                if i == 0 && j == 0 {
                    0.0
                } else {
                    // Diagonally heavy below the first row, so the matrix is invertible.
                    ((i * 7 + j * 3) % 11) as f64 - 5.0 + if i == j { 2.0 * n as f64 } else { 0.0 }
                }
            })
            .collect()
    }

    fn matvec(a: &[f64], x: &[f64], transpose: bool) -> Vec<f64> {
        let n = x.len();
        (0..n)
            .map(|i| {
                (0..n)
                    .map(|k| {
                        let aik = if transpose {
                            a[i * n + k]
                        } else {
                            a[k * n + i]
                        };
                        aik * x[k]
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn solves_and_transposed_solves_match_the_matrix() {
        // 70 crosses faer's recursion (16) and gemm's blocking, with ragged edges.
        for n in [2, 5, 70] {
            let a = matrix(n);
            let lu = Lu::factor(a.clone(), n);
            let k = 3;
            let b: Vec<f64> = (0..n * k).map(|i| (0.3 * i as f64).sin()).collect();
            for transpose in [false, true] {
                let mut x = b.clone();
                let rhs = MatMut::from_column_major_slice_mut(&mut x, n, k);
                if transpose {
                    lu.solve_transpose_in_place(rhs);
                } else {
                    lu.solve_in_place(rhs);
                }
                for (xc, bc) in x.chunks_exact(n).zip(b.chunks_exact(n)) {
                    let back = matvec(&a, xc, transpose);
                    for (got, want) in back.iter().zip(bc) {
                        assert!(
                            (got - want).abs() < 1e-10,
                            "n={n} transpose={transpose}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn pivots_past_a_zero_leading_entry() {
        let lu = Lu::factor(matrix(4), 4);
        assert_ne!(
            lu.perm_forward[0], 0,
            "the zero (0,0) entry must be pivoted away"
        );
    }
}
