//! Media records on SQLite: table `media`, one row per upload, with the channel and message it
//! is attached to in the clear so that attaching is one conditional `UPDATE`.

use async_trait::async_trait;
use confab_domain::{ChannelSid, Media, MediaSid, MessageSid, ServiceSid, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};

use super::SqliteStore;
use crate::error::{Conflict, StoreError};
use crate::traits::MediaStore;

fn read_media(conn: &Connection, service: &str, sid: &str) -> Result<Option<Media>, StoreError> {
    let data: Option<String> = conn
        .prepare_cached("SELECT data FROM media WHERE sid = ?1 AND service_sid = ?2")?
        .query_row([sid, service], |r| r.get(0))
        .optional()?;
    Ok(data.map(|d| serde_json::from_str(&d)).transpose()?)
}

fn write_media(conn: &Connection, media: &Media) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE media SET channel_sid = ?1, message_sid = ?2, data = ?3 WHERE sid = ?4",
    )?
    .execute(params![
        media.channel_sid.map(|c| c.to_string()),
        media.message_sid.map(|m| m.to_string()),
        serde_json::to_string(media)?,
        media.sid.to_string()
    ])?;
    Ok(())
}

#[async_trait]
impl MediaStore for SqliteStore {
    async fn create_media(&self, media: &Media) -> Result<(), StoreError> {
        let media = media.clone();
        self.write(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO media (sid, service_sid, channel_sid, message_sid, created, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (sid) DO NOTHING",
                )?
                .execute(params![
                    media.sid.to_string(),
                    media.service_sid.to_string(),
                    media.channel_sid.map(|c| c.to_string()),
                    media.message_sid.map(|m| m.to_string()),
                    media.date_created.millis(),
                    serde_json::to_string(&media)?
                ])?;
            if inserted == 0 {
                return Err(StoreError::Conflict(Conflict::Sid));
            }
            Ok(())
        })
        .await
    }

    async fn get_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
    ) -> Result<Option<Media>, StoreError> {
        self.read(move |conn| read_media(conn, &service.to_string(), &sid.to_string()))
            .await
    }

    async fn attach_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
        channel: ChannelSid,
        message: MessageSid,
        at: Timestamp,
    ) -> Result<Option<Media>, StoreError> {
        // One writer connection: the read and the update below are not interleaved with
        // another attach.
        self.write(move |conn| {
            let Some(mut media) = read_media(conn, &service.to_string(), &sid.to_string())? else {
                return Ok(None);
            };
            match media.message_sid {
                Some(attached) if attached == message => Ok(Some(media)),
                Some(_) => Err(StoreError::Conflict(Conflict::Sid)),
                None => {
                    media.channel_sid = Some(channel);
                    media.message_sid = Some(message);
                    media.date_updated = at;
                    write_media(conn, &media)?;
                    Ok(Some(media))
                }
            }
        })
        .await
    }

    async fn detach_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
        message: MessageSid,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            let Some(mut media) = read_media(conn, &service.to_string(), &sid.to_string())? else {
                return Ok(());
            };
            if media.message_sid == Some(message) {
                media.channel_sid = None;
                media.message_sid = None;
                write_media(conn, &media)?;
            }
            Ok(())
        })
        .await
    }

    async fn delete_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
    ) -> Result<Option<Media>, StoreError> {
        self.write(move |conn| {
            let media = read_media(conn, &service.to_string(), &sid.to_string())?;
            if media.is_some() {
                conn.prepare_cached("DELETE FROM media WHERE sid = ?1")?
                    .execute([sid.to_string()])?;
            }
            Ok(media)
        })
        .await
    }

    async fn channel_media(&self, channel: ChannelSid) -> Result<Vec<Media>, StoreError> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT data FROM media WHERE channel_sid = ?1 ORDER BY sid")?;
            let rows = stmt.query_map([channel.to_string()], |r| r.get::<_, String>(0))?;
            let mut media = Vec::new();
            for row in rows {
                media.push(serde_json::from_str(&row?)?);
            }
            Ok(media)
        })
        .await
    }

    async fn delete_service_media(&self, service: ServiceSid) -> Result<Vec<Media>, StoreError> {
        self.write(move |conn| {
            let mut stmt =
                conn.prepare_cached("DELETE FROM media WHERE service_sid = ?1 RETURNING data")?;
            let rows = stmt.query_map([service.to_string()], |r| r.get::<_, String>(0))?;
            let mut media = Vec::new();
            for row in rows {
                media.push(serde_json::from_str(&row?)?);
            }
            Ok(media)
        })
        .await
    }

    async fn unattached_media_before(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Media>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT data FROM media WHERE message_sid IS NULL AND created < ?1
                 ORDER BY created LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![before.millis(), limit as i64], |r| {
                r.get::<_, String>(0)
            })?;
            let mut media = Vec::new();
            for row in rows {
                media.push(serde_json::from_str(&row?)?);
            }
            Ok(media)
        })
        .await
    }

    async fn delete_unattached_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
    ) -> Result<Option<Media>, StoreError> {
        self.write(move |conn| {
            let data: Option<String> = conn
                .prepare_cached(
                    "DELETE FROM media WHERE sid = ?1 AND service_sid = ?2 AND message_sid IS NULL
                     RETURNING data",
                )?
                .query_row([sid.to_string(), service.to_string()], |r| r.get(0))
                .optional()?;
            Ok(data.map(|d| serde_json::from_str(&d)).transpose()?)
        })
        .await
    }
}
