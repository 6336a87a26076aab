//! Every timer of a session, in one table: [`Timer::deadline`] is the one
//! place that says when each is due, used both to fire the due ones and to
//! compute the next wait (in the manner of quinn-proto's `timer.rs`).

use std::time::Instant;

use super::{Blocked, DataChannel, Output, Session, Transfer, TransferPhase, later};
use crate::app::ProcessError;
use crate::reply::{Reply, ReplyCode};

/// The timers of a session, in the order they fire when several are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// The deadline of the command in progress: the login check, a failed
    /// login's delay, the passive listener, the data connection, the
    /// processor.
    Blocked,
    /// Uploads processed after their reply (acknowledged on receipt, or
    /// whose client left): the processor's timeout.
    Background,
    /// An unused passive listener is closed, freeing its port.
    PassiveListener,
    /// A held upload (devices profile) stops waiting for its rename.
    HeldUpload,
    /// A client that has not logged in is sent away.
    Login,
    /// A command line begun but not ended (slow-loris).
    Line,
    /// A client that sends nothing (or reads nothing).
    Idle,
}

impl Timer {
    /// Every timer, in firing order.
    const ALL: [Timer; 7] = [
        Timer::Blocked,
        Timer::Background,
        Timer::PassiveListener,
        Timer::HeldUpload,
        Timer::Login,
        Timer::Line,
        Timer::Idle,
    ];

    /// When this timer of `session` is due, if it is running.
    fn deadline(self, session: &Session) -> Option<Instant> {
        let open = session.is_control_open();
        match self {
            Timer::Blocked => match &session.blocked {
                Some(Blocked::LoginCheck { deadline, .. })
                | Some(Blocked::LoginDelay {
                    until: deadline, ..
                })
                | Some(Blocked::Listen { deadline, .. })
                | Some(Blocked::Transfer(Transfer {
                    phase: TransferPhase::AwaitingConnection { deadline },
                    ..
                }))
                | Some(Blocked::Processing { deadline, .. })
                | Some(Blocked::Admission { deadline, .. })
                | Some(Blocked::Holding { deadline, .. }) => Some(*deadline),
                Some(Blocked::Transfer(_)) | None => None,
            },
            Timer::Background => session.background.iter().map(|&(_, at)| at).min(),
            Timer::PassiveListener => match session.data {
                // The upload waiting for its admission will use it.
                DataChannel::Passive { expires, .. }
                    if !matches!(
                        session.blocked,
                        Some(Blocked::Transfer(_) | Blocked::Admission { .. })
                    ) =>
                {
                    Some(expires)
                }
                _ => None,
            },
            // Commands already sent come first: one may be the rename.
            Timer::HeldUpload => session
                .held_deadline()
                .filter(|_| open && session.blocked.is_none() && session.queue.is_empty()),
            Timer::Login => (open && !session.is_logged_in())
                .then(|| later(session.started, session.config.login_timeout)),
            Timer::Line => {
                let started = session.line_started.filter(|_| open)?;
                Some(later(started, session.config.line_timeout))
            }
            // Idle only while nothing is in progress or queued for the
            // client, or while it does not read its replies.
            Timer::Idle => (open
                && session.blocked.is_none()
                && (session.queue.is_empty() || session.is_reply_backlog_full()))
            .then(|| later(session.last_activity, session.config.idle_timeout)),
        }
    }
}

impl Session {
    /// Fires every timer that is due at `now`. Each deadline is read again
    /// just before its timer fires: firing one (closing the connection,
    /// say) stops others.
    pub(super) fn fire_timers(&mut self) {
        for timer in Timer::ALL {
            if timer.deadline(self).is_some_and(|at| at <= self.now) {
                self.fire(timer);
            }
        }
    }

    /// The earliest deadline of all running timers.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        Timer::ALL
            .iter()
            .filter_map(|timer| timer.deadline(self))
            .min()
    }

    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::Blocked => self.blocked_timed_out(),
            Timer::Background => {
                let (now, outputs) = (self.now, &mut self.outputs);
                let user = match &self.login {
                    super::LoginState::LoggedIn(user) => Some(user.as_bytes()),
                    _ => None,
                };
                self.background.retain(|(record, deadline)| {
                    let due = *deadline <= now;
                    if due {
                        record.finish(now, user, "processing timed out");
                        outputs.push_back(Output::CancelProcessing(record.upload));
                    }
                    !due
                });
            }
            // Nobody used the listener: free its port.
            Timer::PassiveListener => self.close_data_channel(),
            // A held upload waited long enough for its rename.
            Timer::HeldUpload => {
                self.finalize_next_held(None);
            }
            Timer::Login => self.time_out("Login timeout; closing control connection."),
            Timer::Line => self.time_out("Command line too slow; closing control connection."),
            Timer::Idle => self.time_out("Idle timeout; closing control connection."),
        }
    }

    /// `421` with `text`, then close.
    fn time_out(&mut self, text: &'static str) {
        self.reply(Reply::new(ReplyCode::SERVICE_NOT_AVAILABLE, text));
        self.close();
    }

    /// The command in progress waited too long for what it waits for.
    fn blocked_timed_out(&mut self) {
        let now = self.now;
        match &self.blocked {
            Some(Blocked::LoginCheck { .. }) => {
                self.blocked = None;
                self.time_out("Login check timed out; closing.");
            }
            Some(Blocked::LoginDelay { .. }) => {
                if let Some(Blocked::LoginDelay { reply, close, .. }) = self.blocked.take() {
                    self.reply(reply);
                    if close {
                        self.close();
                    }
                }
                self.last_activity = now;
            }
            Some(Blocked::Listen { .. }) => {
                self.unblock();
                self.outputs.push_back(Output::CloseData);
                self.reply(Reply::new(
                    ReplyCode::CANT_OPEN_DATA,
                    "Cannot open a passive listener.",
                ));
            }
            Some(Blocked::Transfer(_)) => {
                if let Some(Blocked::Transfer(transfer)) = self.blocked.take() {
                    transfer
                        .record
                        .finish(now, self.user(), "no data connection");
                }
                self.unblock();
                self.close_data_channel();
                self.reply(Reply::new(
                    ReplyCode::CANT_OPEN_DATA,
                    "No data connection came; upload cancelled.",
                ));
            }
            Some(Blocked::Admission { .. }) => self.admission_timed_out(),
            Some(Blocked::Holding { .. }) => self.hold_timed_out(),
            Some(Blocked::Processing { record, .. }) => {
                self.outputs
                    .push_back(Output::CancelProcessing(record.upload));
                let timed_out = ProcessError::transient("processing timed out");
                self.end_processing("processing timed out", Err(timed_out));
            }
            None => {}
        }
    }
}
