//! `confab chat`: a terminal chat client on the Rust SDK, to try Confab from two terminals.
//! A line `/send PATH` sends a file as a media message.

use confab_client::{Client, ClientError, CreateChannelOptions, MediaFile};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Joins (creating if needed) `channel` as `identity`, prints its events, and sends each line
/// read from standard input. Returns at end of input.
pub async fn run(url: &str, token: &str, channel: &str) -> Result<(), ClientError> {
    let (client, mut events) = Client::connect(url, token).await?;
    let mut ch = match client.get_channel(channel).await {
        Ok(ch) => ch,
        Err(e) if e.code() == Some(confab_app::AppError::channel_not_found().code) => {
            client
                .create_channel(CreateChannelOptions {
                    unique_name: Some(channel.to_owned()),
                    friendly_name: Some(channel.to_owned()),
                    ..Default::default()
                })
                .await?
        }
        Err(e) => return Err(e),
    };
    if ch.view().status != "joined" {
        ch.join().await?;
    }
    let history = ch
        .get_messages(Some(20), None, confab_client::Direction::Backwards)
        .await?;
    for m in history.items {
        let text = match &m.media {
            Some(media) => media_line(
                media.filename.as_deref(),
                media.size,
                &media.content_type,
                &media.sid,
            ),
            None => m.body.clone(),
        };
        println!("[{}] {}: {text}", m.index, m.author);
    }
    println!(
        "-- joined {channel} as {}; type a line and Enter to send, Ctrl-D to quit --",
        client.identity()
    );
    let sid = ch.sid().to_owned();
    let printer = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            if e.channel.as_deref().is_some_and(|c| c != sid) {
                continue;
            }
            let d = &e.data;
            match e.name.as_str() {
                "messageAdded" => println!(
                    "[{}] {}: {}",
                    d["index"],
                    d["author"].as_str().unwrap_or(""),
                    message_text(d)
                ),
                "memberJoined" => println!("* {} joined", d["identity"].as_str().unwrap_or("")),
                "memberLeft" => println!("* {} left", d["identity"].as_str().unwrap_or("")),
                "typingStarted" => {
                    println!("* {} is typing...", d["identity"].as_str().unwrap_or(""))
                }
                "connectionStateChanged" => {
                    println!("* connection: {}", d["state"].as_str().unwrap_or(""))
                }
                _ => {}
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let sent = match line.strip_prefix("/send ") {
            Some(path) => match read_file(path.trim()).await {
                Ok(file) => ch.send_media(file, None).await,
                Err(e) => {
                    eprintln!("! cannot read {path}: {e}");
                    continue;
                }
            },
            None => ch.send_message(line).await,
        };
        if let Err(e) = sent {
            eprintln!("! {e}");
        }
    }
    client.shutdown();
    printer.abort();
    Ok(())
}

fn media_line(filename: Option<&str>, size: u64, content_type: &str, sid: &str) -> String {
    format!(
        "[file {} ({size} bytes, {content_type}), {sid}]",
        filename.unwrap_or("unnamed")
    )
}

/// A message event's text: its body, or a line naming its media.
fn message_text(data: &Value) -> String {
    match data.get("media").filter(|m| m.is_object()) {
        Some(m) => media_line(
            m["filename"].as_str(),
            m["size"].as_u64().unwrap_or(0),
            m["contentType"].as_str().unwrap_or(""),
            m["sid"].as_str().unwrap_or(""),
        ),
        None => data["body"].as_str().unwrap_or("").to_owned(),
    }
}

/// A file to send, its content type told by its extension.
async fn read_file(path: &str) -> std::io::Result<MediaFile> {
    let bytes = tokio::fs::read(path).await?;
    let path = std::path::Path::new(path);
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let content_type = match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    };
    Ok(MediaFile {
        content_type: content_type.to_owned(),
        filename: path.file_name().and_then(|n| n.to_str()).map(str::to_owned),
        bytes,
    })
}
