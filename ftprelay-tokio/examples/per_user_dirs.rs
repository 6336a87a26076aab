//! A relay with two users whose uploads land in per-user directories.

use ftprelay_tokio::Relay;
use ftprelay_tokio::proto::{
    Authenticator, FileProcessor, Login, LoginRejected, ProcessError, RelayConfig, Upload,
};
use std::path::PathBuf;

/// Two users; each login decides where that user's files go.
struct Users;
struct MoveInto(PathBuf);

impl Authenticator for Users {
    type Processor = MoveInto;
    async fn authenticate(&self, login: &Login) -> Result<MoveInto, LoginRejected> {
        let dir = match (login.user(), login.password()) {
            (b"scanner", b"scan-pw") => "scans",
            (b"camera", b"cam-pw") => "camera",
            _ => return Err(LoginRejected),
        };
        Ok(MoveInto(
            std::env::temp_dir().join("ftprelay-demo").join(dir),
        ))
    }
}

impl FileProcessor for MoveInto {
    async fn process(&self, upload: &Upload) -> Result<(), ProcessError> {
        let failed = |e: std::io::Error| ProcessError::transient(e.to_string());
        tokio::fs::create_dir_all(&self.0).await.map_err(failed)?;
        // The file name is one path component, never "." or "..".
        let target = self.0.join(&*upload.file_name_lossy());
        tokio::fs::copy(upload.path(), target)
            .await
            .map_err(failed)?; // the relay deletes the spool file
        Ok(())
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let relay = Relay::bind(RelayConfig::default(), Users).await?; // 127.0.0.1:2121
    relay
        .serve(async { tokio::signal::ctrl_c().await.unwrap_or(()) })
        .await
}
