//! `confab chat`: a terminal chat client on the Rust SDK, to try Confab from two terminals.

use confab_client::{Client, ClientError, CreateChannelOptions};
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
        println!("[{}] {}: {}", m.index, m.author, m.body);
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
                    d["body"].as_str().unwrap_or("")
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
        if let Err(e) = ch.send_message(line).await {
            eprintln!("! {e}");
        }
    }
    client.shutdown();
    printer.abort();
    Ok(())
}
