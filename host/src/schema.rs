//! Input validation.
