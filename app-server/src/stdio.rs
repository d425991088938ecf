//! stdin/stdout as async halves.
//!
//! Unix: non-blocking pipes or sockets (no thread hop per read or write) when the host
//! connected us with pipes, tokio's blocking handles otherwise (a terminal, a file,
//! `/dev/null`). Windows: tokio's handles always (anonymous pipes cannot be registered with
//! the reactor), and Ctrl-C / Ctrl-Break end the input, so they are handled exactly like the
//! host closing stdin.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The boxed input half.
pub type Input = Box<dyn AsyncRead + Unpin + Send>;
/// The boxed output half.
pub type Output = Box<dyn AsyncWrite + Unpin + Send>;

#[cfg(not(any(unix, windows)))]
compile_error!("authbridge's stdio supports Unix and Windows only");

#[cfg(unix)]
pub use unix::stdio;
#[cfg(all(unix, test))]
use unix::{fd_kind, input, output, FdKind};

/// stdin and stdout through tokio's handles; stdin ends at a Ctrl-C or Ctrl-Break. Must be
/// called inside a tokio runtime.
#[cfg(windows)]
pub fn stdio() -> io::Result<(Input, Output)> {
    let mut ctrl_c = tokio::signal::windows::ctrl_c()?;
    let mut ctrl_break = tokio::signal::windows::ctrl_break()?;
    let stop = async move {
        tokio::select! {
            _ = ctrl_c.recv() => {}
            _ = ctrl_break.recv() => {}
        }
    };
    let input = EndWhen::new(tokio::io::stdin(), stop);
    Ok((Box::new(input), Box::new(tokio::io::stdout())))
}

/// A reader that reports end of input once `stop` completes (a console control event),
/// whatever the inner reader is doing; from then on it stays at end of input.
pub struct EndWhen<R> {
    inner: R,
    stop: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl<R> EndWhen<R> {
    /// `inner`, ended early by `stop`.
    pub fn new(inner: R, stop: impl Future<Output = ()> + Send + 'static) -> Self {
        EndWhen {
            inner,
            stop: Some(Box::pin(stop)),
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for EndWhen<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(stop) = self.stop.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if stop.as_mut().poll(cx).is_ready() {
            self.stop = None;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

    use tokio::net::unix::pipe;

    use super::{Input, Output};

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
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::{Read, Seek, Write};
    use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

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

#[cfg(test)]
mod end_when_tests {
    use tokio::io::AsyncReadExt;

    use super::EndWhen;

    #[tokio::test]
    async fn input_ends_when_the_stop_event_fires_even_while_a_read_waits() {
        let (_host, server) = tokio::io::duplex(64);
        let (fire, fired) = tokio::sync::oneshot::channel::<()>();
        let mut input = EndWhen::new(server, async move {
            let _ = fired.await;
        });
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            input.read_to_end(&mut got).await.map(|_| got)
        });
        fire.send(()).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
            .await
            .expect("the read ended")
            .unwrap()
            .unwrap();
        assert!(got.is_empty());
    }

    #[tokio::test]
    async fn bytes_pass_through_until_the_stop_event() {
        let (mut host, server) = tokio::io::duplex(64);
        let mut input = EndWhen::new(server, std::future::pending());
        tokio::io::AsyncWriteExt::write_all(&mut host, b"abc")
            .await
            .unwrap();
        drop(host);
        let mut got = String::new();
        input.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "abc");
    }
}
