//! State shared between processes: the directory's control file (rotation generation, writer
//! slots), which process is writing (fork epoch, process number N), how a rotation is asked
//! for and waited on, and the host's list of log directories.

pub(crate) mod control;
pub(crate) mod directories;
pub(crate) mod process;
pub(crate) mod rotation;
