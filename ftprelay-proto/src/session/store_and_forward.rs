//! A store-and-forward processor (a durable queue, see
//! [`crate::FileProcessor::store_and_forward`]): each upload is admitted
//! before its `150`, and each held upload kept durably before its `226`, so
//! that no `226` is given for an upload the queue does not hold.

use super::{Blocked, Output, Session, SessionFile, TransferId, UploadRecord};
use crate::app::ProcessError;
use crate::reply::{Reply, ReplyCode};

impl Session {
    /// The answer to [`Output::CheckAdmission`]: the upload goes on (`150`),
    /// or its refusal is answered and nothing is received.
    pub(super) fn admission(&mut self, upload: TransferId, result: Result<(), ProcessError>) {
        let waiting = matches!(
            &self.blocked,
            Some(Blocked::Admission { pending, .. }) if pending.record.upload == upload
        );
        if !waiting {
            // Timed out already, or never asked: stale.
            return;
        }
        let Some(Blocked::Admission { pending, .. }) = self.blocked.take() else {
            return;
        };
        self.unblock();
        match result {
            Ok(()) => {
                let listing = None;
                let limits = (pending.held, pending.max_size);
                self.open_transfer(pending.record, pending.path, listing, pending.text, limits);
            }
            Err(error) => {
                tracing::warn!(
                    upload = upload.get(),
                    reason = error.reason(),
                    "upload not admitted"
                );
                pending.record.finish(self.now, self.user(), "not admitted");
                // The client gives this channel up with its upload.
                self.close_data_channel();
                self.reply(error.reply());
            }
        }
    }

    /// No answer to [`Output::CheckAdmission`] in time: `451`, and the
    /// session goes on.
    pub(super) fn admission_timed_out(&mut self) {
        let Some(Blocked::Admission { pending, .. }) = self.blocked.take() else {
            return;
        };
        self.unblock();
        pending
            .record
            .finish(self.now, self.user(), "admission timed out");
        self.close_data_channel();
        self.reply(Reply::new(
            ReplyCode::LOCAL_ERROR,
            "Cannot tell whether the upload can be taken now; try again later.",
        ));
    }

    /// The answer to [`Output::Hold`]: kept, the upload waits for its
    /// rename (`226`); not kept, it is discarded and its error answered.
    pub(super) fn held(&mut self, upload: TransferId, result: Result<(), ProcessError>) {
        let waiting = matches!(
            &self.blocked,
            Some(Blocked::Holding { record, .. }) if record.upload == upload
        );
        if !waiting {
            return;
        }
        let Some(Blocked::Holding { record, file, .. }) = self.blocked.take() else {
            return;
        };
        self.unblock();
        match result {
            Ok(()) => self.keep_held(record, file),
            Err(error) => {
                tracing::warn!(
                    upload = upload.get(),
                    reason = error.reason(),
                    "hold failed"
                );
                record.finish(self.now, self.user(), "not held");
                self.outputs.push_back(Output::Discard(upload));
                self.reply(error.reply());
            }
        }
    }

    /// No answer to [`Output::Hold`] in time: `451`, and the upload is
    /// discarded (the adapter cancels the hold, the processor forgets it).
    pub(super) fn hold_timed_out(&mut self) {
        let Some(Blocked::Holding { record, .. }) = self.blocked.take() else {
            return;
        };
        self.unblock();
        record.finish(self.now, self.user(), "hold timed out");
        self.outputs.push_back(Output::Discard(record.upload));
        self.reply(ProcessError::transient("hold timed out").reply());
    }

    /// A held upload waits for its rename from now on: `226`.
    pub(super) fn keep_held(&mut self, record: UploadRecord, mut file: SessionFile) {
        file.held = Some(record);
        self.remember(file);
        self.reply(Reply::new(
            ReplyCode::CLOSING_DATA,
            "Transfer complete; the file is processed once renamed.",
        ));
    }
}
