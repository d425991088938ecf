//! stdin/stdout as async halves: non-blocking pipes or sockets (no thread hop per read or
//! write) when the host connected us with pipes, tokio's blocking handles otherwise (a
//! terminal, a file, `/dev/null`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

/// The boxed input half.
pub type Input = Box<dyn AsyncRead + Unpin + Send>;
/// The boxed output half.
pub type Output = Box<dyn AsyncWrite + Unpin + Send>;

/// stdin and stdout, as fast as they can be. Must be called inside a tokio runtime.
pub fn stdio() -> io::Result<(Input, Output)> {
    Ok((input(libc::STDIN_FILENO)?, output(libc::STDOUT_FILENO)?))
}

/// What a file descriptor is, as far as choosing the I/O goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// A pipe or FIFO: registered with the reactor, non-blocking.
    Pipe,
    /// A stream socket (Node.js, for one, gives children socket pairs): same.
    Socket,
    /// Anything else: blocking I/O on tokio's helper threads.
    Other,
}

pub(crate) fn fd_kind(fd: BorrowedFd<'_>) -> io::Result<FdKind> {
    use std::os::fd::AsRawFd;
    // SAFETY: `stat` is plain data that fstat fills in; the fd is borrowed, so open.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(match stat.st_mode & libc::S_IFMT {
        libc::S_IFIFO => FdKind::Pipe,
        libc::S_IFSOCK => FdKind::Socket,
        _ => FdKind::Other,
    })
}

/// A duplicate of `fd`, so dropping our half never closes the process's stdin/stdout
/// (a later `open` would then reuse the number).
fn duplicate(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: the caller names a descriptor that is open for the life of the process.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    borrowed.try_clone_to_owned()
}

fn socket(owned: OwnedFd) -> io::Result<tokio::net::UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(owned);
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

/// The input half for `fd` (stdin in production; any readable fd in tests).
pub(crate) fn input(fd: RawFd) -> io::Result<Input> {
    let owned = duplicate(fd)?;
    Ok(match fd_kind(owned.as_fd())? {
        FdKind::Pipe => Box::new(pipe::Receiver::from_owned_fd(owned)?),
        FdKind::Socket => Box::new(socket(owned)?),
        FdKind::Other if fd == libc::STDIN_FILENO => Box::new(tokio::io::stdin()),
        FdKind::Other => Box::new(tokio::fs::File::from_std(owned.into())),
    })
}

/// The output half for `fd` (stdout in production; any writable fd in tests).
pub(crate) fn output(fd: RawFd) -> io::Result<Output> {
    let owned = duplicate(fd)?;
    Ok(match fd_kind(owned.as_fd())? {
        FdKind::Pipe => Box::new(pipe::Sender::from_owned_fd(owned)?),
        FdKind::Socket => Box::new(socket(owned)?),
        FdKind::Other if fd == libc::STDOUT_FILENO => Box::new(tokio::io::stdout()),
        FdKind::Other => Box::new(tokio::fs::File::from_std(owned.into())),
    })
}
