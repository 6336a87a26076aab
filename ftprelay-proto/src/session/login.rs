//! USER, PASS and the answer to a login check.

use bytes::Bytes;

use super::LoginVerdict;
use super::Output;
use super::{Blocked, LoginState, Session};
use crate::app::Login;
use crate::command::Arg;
use crate::reply::{Reply, ReplyCode};

impl Session {
    /// USER: always `331`, known user or not, so that a scan learns nothing.
    pub(super) fn user_command(&mut self, user: Arg) {
        if self.is_logged_in() {
            return self.reply(Reply::new(
                ReplyCode::NOT_LOGGED_IN,
                "Cannot change to another user.",
            ));
        }
        self.login = LoginState::NeedPassword(user);
        self.reply(Reply::new(
            ReplyCode::NEED_PASSWORD,
            "Please specify the password.",
        ));
    }

    /// PASS: hands the login to the application and waits for its answer.
    pub(super) fn pass_command(&mut self, password: Bytes) {
        let user = match &self.login {
            LoginState::LoggedIn(_) => {
                return self.reply(Reply::new(ReplyCode::BAD_SEQUENCE, "Already logged in."));
            }
            LoginState::NeedUser => {
                return self.reply(Reply::new(ReplyCode::BAD_SEQUENCE, "Send USER first."));
            }
            LoginState::NeedPassword(user) => user.clone(),
        };
        self.outputs.push_back(Output::CheckLogin(Login::new(
            user.to_bytes(),
            password,
            self.peer,
        )));
        self.blocked = Some(Blocked::LoginCheck {
            user,
            started: self.now,
            deadline: self.deadline_after(self.config.login_check_timeout),
        });
    }

    /// The application's verdict. A failure is answered once the configured
    /// delay has passed since the PASS arrived, however long the check took
    /// within it: an unknown user (checked against a dummy hash, or not at
    /// all) and a wrong password take the same time, so the reply's timing
    /// tells nothing. The last allowed failure is answered `421` and closes.
    pub(super) fn login_checked(&mut self, verdict: LoginVerdict) {
        let Some(Blocked::LoginCheck { user, started, .. }) = &self.blocked else {
            // No check is pending (it timed out, or the client left): stale.
            return;
        };
        let (user, started) = (user.clone(), *started);
        match verdict {
            LoginVerdict::Accepted {
                profile,
                store_and_forward,
            } => {
                if let Some(profile) = profile {
                    self.profile = profile;
                }
                self.store_and_forward = store_and_forward;
                self.login = LoginState::LoggedIn(user);
                self.unblock();
                self.reply(Reply::new(ReplyCode::LOGGED_IN, "Login successful."));
            }
            LoginVerdict::LockedOut => {
                self.unblock();
                self.reply(Reply::new(
                    ReplyCode::SERVICE_NOT_AVAILABLE,
                    "Too many failed logins from your address; try again later.",
                ));
                self.close();
            }
            LoginVerdict::Rejected => {
                self.login = LoginState::NeedUser;
                self.failed_logins += 1;
                let close = self.failed_logins >= self.config.max_failed_logins;
                let reply = if close {
                    Reply::new(
                        ReplyCode::SERVICE_NOT_AVAILABLE,
                        "Too many failed logins; closing.",
                    )
                } else {
                    Reply::new(ReplyCode::NOT_LOGGED_IN, "Login incorrect.")
                };
                self.blocked = Some(Blocked::LoginDelay {
                    until: super::later(started, self.config.failed_login_delay).max(self.now),
                    reply,
                    close,
                });
            }
        }
    }
}
