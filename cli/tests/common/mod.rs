//! Helpers of the command's integration tests: a throwaway PostgreSQL cluster ([`cluster`]),
//! and the trials of test programs that need a system tool ([`trials`], shared with the
//! library's tests).
#![allow(dead_code)]

pub mod cluster;
#[path = "../../../tests/common/trials.rs"]
pub mod trials;
