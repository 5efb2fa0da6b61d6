//! One module per command.

pub mod cat;
pub mod cdr;
pub mod export;
pub mod load;
pub mod rotate;
pub mod seal;
pub mod stats;
pub mod verify;
