//! The dry run: each message written as `<id>-<kind>.eml` into a directory.

use liaisond_store::OutboxItem;

use super::DeliveryError;

/// The dry-run transport: the message as it would have been sent, written atomically.
pub(super) async fn write_to_directory(
    dir: &std::path::Path,
    item: &OutboxItem,
    bytes: &[u8],
) -> Result<String, DeliveryError> {
    let name = format!("{:06}-{}.eml", item.id, item.draft.kind.as_str());
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let bytes = bytes.to_vec();
    let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(tmp.parent().unwrap_or(std::path::Path::new(".")))?;
        // 0600: the message may carry the original statement and its senders' addresses.
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        file.write_all(&bytes)?;
        std::fs::rename(&tmp, &path)
    })
    .await;
    match result {
        Ok(Ok(())) => Ok(format!("written to {}", dir.join(name).display())),
        Ok(Err(e)) => Err(DeliveryError::Temporary(format!("cannot write into {}: {e}", dir.display()))),
        Err(e) => Err(DeliveryError::Temporary(format!("writing failed: {e}"))),
    }
}
