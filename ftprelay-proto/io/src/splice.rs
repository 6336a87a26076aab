//! Receiving a plaintext upload with splice(2): socket to pipe to spool
//! file, so the bytes never pass through user space. Measured against the
//! read/write loop, it saves one of the two copies per byte.

use std::fs::File;
use std::io;
use std::net::TcpStream;

use proto::TransferEnd;
use rustix::pipe::{SpliceFlags, fcntl_setpipe_size, pipe, splice};

/// Bytes moved per splice call, and the pipe's size: large enough that a
/// big upload takes few calls.
const PIPE_SIZE: usize = 1024 * 1024;

/// The result of trying to splice an upload.
pub(super) enum Spliced {
    /// The upload ended, one way or another.
    Ended(TransferEnd),
    /// The kernel cannot splice here (no pipes, a file system without
    /// splice): `received` bytes are already in the file, the rest is for
    /// the read/write loop.
    Unsupported { received: u64 },
}

/// Moves the rest of the upload from `socket` into `file`, after the
/// `received` bytes already there, up to `max_size` bytes in all.
pub(super) fn splice_into(
    socket: &TcpStream,
    file: &mut File,
    mut received: u64,
    max_size: u64,
    pace: &crate::receive::Pace,
) -> Spliced {
    let Ok((pipe_out, pipe_in)) = pipe() else {
        return Spliced::Unsupported { received };
    };
    let mut spliced_any = false;
    // The default pipe holds 64 KiB; a larger one means fewer calls. Not
    // fatal when refused (a lowered /proc/sys/fs/pipe-max-size).
    let _ = fcntl_setpipe_size(&pipe_in, PIPE_SIZE);
    loop {
        // One byte more than allowed is enough to know the upload is too large.
        let room = (max_size - received).saturating_add(1);
        let chunk = pace.allow(usize::try_from(room).unwrap_or(PIPE_SIZE).min(PIPE_SIZE));
        let spliced = splice(socket, None, &pipe_in, None, chunk, SpliceFlags::MOVE);
        pace.used(chunk, *spliced.as_ref().unwrap_or(&0));
        let moved = match spliced {
            Ok(0) => return Spliced::Ended(TransferEnd::Complete { bytes: received }),
            Ok(moved) => moved,
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) if !spliced_any => {
                return Spliced::Unsupported { received };
            }
            // SO_RCVTIMEO applies to splice too: EAGAIN is the stall timeout.
            Err(rustix::io::Errno::AGAIN) => return Spliced::Ended(TransferEnd::Stalled),
            Err(_) => return Spliced::Ended(TransferEnd::Reset),
        };
        spliced_any = true;
        received += moved as u64;
        if received > max_size {
            return Spliced::Ended(TransferEnd::TooLarge);
        }
        if pace.is_too_slow(received) {
            return Spliced::Ended(TransferEnd::TooSlow);
        }
        let mut in_pipe = moved;
        while in_pipe > 0 {
            match splice(&pipe_out, None, &*file, None, in_pipe, SpliceFlags::MOVE) {
                Ok(0) => return Spliced::Ended(crate::receive::spool_failed(&zero_write())),
                Ok(written) => in_pipe -= written,
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::INVAL) => {
                    // This file system takes no splice: hand over what is
                    // in the pipe by read/write, then the rest likewise.
                    if let Err(error) = drain_pipe(&pipe_out, file, in_pipe) {
                        return Spliced::Ended(crate::receive::spool_failed(&error));
                    }
                    return Spliced::Unsupported { received };
                }
                Err(errno) => {
                    return Spliced::Ended(crate::receive::spool_failed(&errno.into()));
                }
            }
        }
    }
}

/// Copies the `left` bytes waiting in the pipe into `file`.
fn drain_pipe(pipe_out: &std::os::fd::OwnedFd, file: &mut File, mut left: usize) -> io::Result<()> {
    use std::io::Write;
    let mut buffer = [0; 16 * 1024];
    while left > 0 {
        let want = left.min(buffer.len());
        let read = rustix::io::read(pipe_out, &mut buffer[..want])?;
        if read == 0 {
            return Err(zero_write());
        }
        file.write_all(&buffer[..read])?;
        left -= read;
    }
    Ok(())
}

fn zero_write() -> io::Error {
    io::Error::new(io::ErrorKind::WriteZero, "the spool file took no bytes")
}
