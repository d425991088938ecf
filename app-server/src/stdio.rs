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

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) returns.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both descriptors were just opened and are owned by nobody else.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    #[test]
    fn pipes_sockets_and_files_are_told_apart() {
        let (read, _write) = pipe();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        let kinds = [
            fd_kind(read.as_fd()).unwrap(),
            fd_kind(a.as_fd()).unwrap(),
            fd_kind(file.as_fd()).unwrap(),
        ];
        assert_eq!(kinds, [FdKind::Pipe, FdKind::Socket, FdKind::Other]);
    }

    #[tokio::test]
    async fn a_pipe_is_made_non_blocking_and_carries_bytes_both_ways() {
        let (server_in, host_out) = pipe();
        let (host_in, server_out) = pipe();
        let mut input = input(server_in.as_raw_fd()).unwrap();
        let mut output = output(server_out.as_raw_fd()).unwrap();
        // SAFETY: F_GETFL on open descriptors reads their status flags.
        let flags = unsafe {
            [
                libc::fcntl(server_in.as_raw_fd(), libc::F_GETFL),
                libc::fcntl(server_out.as_raw_fd(), libc::F_GETFL),
            ]
        };
        assert_eq!(flags.map(|f| f & libc::O_NONBLOCK), [libc::O_NONBLOCK; 2]);
        drop((server_in, server_out));
        std::fs::File::from(host_out).write_all(b"ping\n").unwrap();
        let mut got = String::new();
        input.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "ping\n");
        output.write_all(b"pong\n").await.unwrap();
        output.flush().await.unwrap();
        drop(output);
        let mut answer = String::new();
        std::fs::File::from(host_in)
            .read_to_string(&mut answer)
            .unwrap();
        assert_eq!(answer, "pong\n");
    }

    #[tokio::test]
    async fn a_regular_file_falls_back_to_blocking_io() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"from a file\n").unwrap();
        file.rewind().unwrap();
        let mut input = input(file.as_raw_fd()).unwrap();
        let mut got = String::new();
        input.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "from a file\n");
    }
}
