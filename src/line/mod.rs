//! The line format, pure: values to the bytes of one line ([`encode`]) and back to each
//! field's bytes ([`decode`]). No I/O; both directions live here and nowhere else.

pub mod decode;
pub mod encode;
pub mod value;
