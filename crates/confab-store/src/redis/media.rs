//! Media records on Redis: `{p}:media:{ME…}` holds the upload's record as it was created, and
//! `{p}:media-at:{ME…}` its attachment (`CH…:IM…:ms`), written once by a script so that two
//! sends of one media cannot both attach it; `{p}:{CH…}:media` lists the media attached in a
//! channel. A record read back is the upload's record with its attachment filled in.

use async_trait::async_trait;
use confab_domain::{ChannelSid, Media, MediaSid, MessageSid, ServiceSid, Timestamp};

use super::scripts::{ATTACH_MEDIA, DELETE_UNATTACHED_MEDIA, DETACH_MEDIA};
use super::{decode, encode, RedisStore};
use crate::error::{Conflict, StoreError};
use crate::traits::MediaStore;

/// An attachment as stored: where, and when.
struct Attachment {
    channel: ChannelSid,
    message: MessageSid,
    at: Timestamp,
}

impl Attachment {
    fn encode(&self) -> String {
        format!("{}:{}:{}", self.channel, self.message, self.at.millis())
    }

    fn decode(text: &str) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("media attachment {text:?}"));
        let mut parts = text.splitn(3, ':');
        let channel = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(corrupt)?;
        let message = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(corrupt)?;
        let at = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(corrupt)?;
        Ok(Self {
            channel,
            message,
            at: Timestamp(at),
        })
    }

    fn apply(self, media: &mut Media) {
        media.channel_sid = Some(self.channel);
        media.message_sid = Some(self.message);
        media.date_updated = self.at;
    }
}

impl RedisStore {
    fn media_key(&self, sid: MediaSid) -> String {
        self.key(&format!("media:{sid}"))
    }

    fn attachment_key(&self, sid: MediaSid) -> String {
        self.key(&format!("media-at:{sid}"))
    }

    fn service_media_key(&self, service: ServiceSid) -> String {
        self.key(&format!("media-of:{service}"))
    }

    fn unattached_key(&self) -> String {
        self.key("media-loose")
    }

    async fn read_media(&self, sid: MediaSid) -> Result<Option<Media>, StoreError> {
        let (record, attachment): (Option<String>, Option<String>) = redis::pipe()
            .get(self.media_key(sid))
            .get(self.attachment_key(sid))
            .query_async(&mut self.conn())
            .await?;
        let Some(record) = record else {
            return Ok(None);
        };
        let mut media: Media = decode(&record)?;
        if let Some(attachment) = attachment {
            Attachment::decode(&attachment)?.apply(&mut media);
        }
        Ok(Some(media))
    }
}

#[async_trait]
impl MediaStore for RedisStore {
    async fn create_media(&self, media: &Media) -> Result<(), StoreError> {
        let created: bool = redis::cmd("SET")
            .arg(self.media_key(media.sid))
            .arg(encode(media)?)
            .arg("NX")
            .query_async::<Option<String>>(&mut self.conn())
            .await?
            .is_some();
        if !created {
            return Err(StoreError::Conflict(Conflict::Sid));
        }
        // Indexed after the record: a crash between leaves a record that a service deletion
        // misses, never an index entry without a record.
        let sid = media.sid.to_string();
        redis::pipe()
            .atomic()
            .sadd(self.service_media_key(media.service_sid), &sid)
            .ignore()
            .zadd(self.unattached_key(), &sid, media.date_created.millis())
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn get_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
    ) -> Result<Option<Media>, StoreError> {
        Ok(self
            .read_media(sid)
            .await?
            .filter(|m| m.service_sid == service))
    }

    async fn attach_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
        channel: ChannelSid,
        message: MessageSid,
        at: Timestamp,
    ) -> Result<Option<Media>, StoreError> {
        let Some(mut media) = self.get_media(service, sid).await? else {
            return Ok(None);
        };
        let wanted = Attachment {
            channel,
            message,
            at,
        };
        let stored: String = redis::Script::new(ATTACH_MEDIA)
            .arg(self.media_key(sid))
            .arg(self.attachment_key(sid))
            .arg(self.channel_key(channel, "media"))
            .arg(wanted.encode())
            .arg(sid.to_string())
            .arg(self.unattached_key())
            .invoke_async(&mut self.conn())
            .await?;
        if stored == "MISSING" {
            return Ok(None);
        }
        let stored = Attachment::decode(&stored)?;
        if stored.message != message {
            return Err(StoreError::Conflict(Conflict::Sid));
        }
        stored.apply(&mut media);
        Ok(Some(media))
    }

    async fn detach_media(
        &self,
        _service: ServiceSid,
        sid: MediaSid,
        message: MessageSid,
    ) -> Result<(), StoreError> {
        let Some(media) = self.read_media(sid).await? else {
            return Ok(());
        };
        let Some(channel) = media.channel_sid else {
            return Ok(());
        };
        let _: i64 = redis::Script::new(DETACH_MEDIA)
            .arg(self.attachment_key(sid))
            .arg(self.channel_key(channel, "media"))
            .arg(format!("{channel}:{message}"))
            .arg(sid.to_string())
            .invoke_async(&mut self.conn())
            .await?;
        if self
            .read_media(sid)
            .await?
            .is_some_and(|m| m.message_sid.is_none())
        {
            // Unattached again: the sweep of old unattached uploads may take it.
            redis::cmd("ZADD")
                .arg(self.unattached_key())
                .arg(media.date_created.millis())
                .arg(sid.to_string())
                .query_async::<()>(&mut self.conn())
                .await?;
        }
        Ok(())
    }

    async fn delete_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
    ) -> Result<Option<Media>, StoreError> {
        let Some(media) = self.get_media(service, sid).await? else {
            return Ok(None);
        };
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(self.media_key(sid))
            .ignore()
            .del(self.attachment_key(sid))
            .ignore()
            .srem(self.service_media_key(service), sid.to_string())
            .ignore()
            .zrem(self.unattached_key(), sid.to_string())
            .ignore();
        if let Some(channel) = media.channel_sid {
            pipe.srem(self.channel_key(channel, "media"), sid.to_string())
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        Ok(Some(media))
    }

    async fn channel_media(&self, channel: ChannelSid) -> Result<Vec<Media>, StoreError> {
        let mut sids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.channel_key(channel, "media"))
            .query_async(&mut self.conn())
            .await?;
        sids.sort();
        let mut media = Vec::with_capacity(sids.len());
        for sid in sids {
            let sid: MediaSid = sid
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("media SID {sid:?}")))?;
            if let Some(m) = self.read_media(sid).await? {
                media.push(m);
            }
        }
        Ok(media)
    }

    async fn delete_service_media(&self, service: ServiceSid) -> Result<Vec<Media>, StoreError> {
        let sids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.service_media_key(service))
            .query_async(&mut self.conn())
            .await?;
        let mut deleted = Vec::with_capacity(sids.len());
        for sid in sids {
            let sid: MediaSid = sid
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("media SID {sid:?}")))?;
            if let Some(media) = self.delete_media(service, sid).await? {
                deleted.push(media);
            }
        }
        redis::cmd("DEL")
            .arg(self.service_media_key(service))
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(deleted)
    }

    async fn unattached_media_before(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Media>, StoreError> {
        let sids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.unattached_key())
            .arg("-inf")
            .arg(format!("({}", before.millis()))
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await?;
        let mut media = Vec::with_capacity(sids.len());
        for sid in sids {
            let sid: MediaSid = sid
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("media SID {sid:?}")))?;
            match self.read_media(sid).await? {
                Some(m) if m.message_sid.is_none() => media.push(m),
                // Attached meanwhile: its attach took it out of the set.
                Some(_) => {}
                // The record is gone (a deletion cut short): the entry would fill every batch.
                None => {
                    redis::cmd("ZREM")
                        .arg(self.unattached_key())
                        .arg(sid.to_string())
                        .query_async::<()>(&mut self.conn())
                        .await?
                }
            }
        }
        Ok(media)
    }

    async fn delete_unattached_media(
        &self,
        service: ServiceSid,
        sid: MediaSid,
    ) -> Result<Option<Media>, StoreError> {
        let Some(media) = self.get_media(service, sid).await? else {
            return Ok(None);
        };
        let deleted: Option<String> = redis::Script::new(DELETE_UNATTACHED_MEDIA)
            .arg(self.media_key(sid))
            .arg(self.attachment_key(sid))
            .arg(self.unattached_key())
            .arg(self.service_media_key(media.service_sid))
            .arg(sid.to_string())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(deleted.map(|record| decode(&record)).transpose()?)
    }
}
