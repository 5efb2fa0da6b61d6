//! The writer: a connection ([`connection`]) formats each record and hands it to its table's
//! buffer ([`buffer`]), which writes whole lines to the table's current file ([`table_file`]:
//! the rotation handshake, seals, syncs) through an append-only log file ([`log_file`]). A
//! helper thread ([`housekeeper`]) drains buffers, seals by age and syncs, also the files writers
//! leave ([`handoff`]), so that no insert waits for the disk. [`policy`] says
//! when a file is left or synced, [`seal`] how it is sealed; [`config`] is the URL and the
//! parameters (the `<table>.columns` file is [`crate::columns`]); [`abandoned`] seals what a writer that
//! is gone left behind.

pub(crate) mod abandoned;
pub(crate) mod buffer;
pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod handoff;
pub(crate) mod housekeeper;
pub(crate) mod log_file;
pub(crate) mod policy;
pub(crate) mod seal;
pub(crate) mod table_file;
