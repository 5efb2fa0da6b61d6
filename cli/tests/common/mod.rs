//! Helpers of the command's integration tests: a throwaway PostgreSQL cluster ([`cluster`]).

pub mod cluster;
