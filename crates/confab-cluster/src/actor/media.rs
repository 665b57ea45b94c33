//! The actor's media work: a post that names a media gets the stored upload's details and
//! attaches it (once, across the service); a removed message, or a deleted channel, takes its
//! media with it.

use confab_domain::{
    Caller, ChannelCommand, ChannelEvent, ChannelEventKind, DomainError, Media, MediaSid, Message,
    ServiceSid, Timestamp,
};
use confab_store::{Conflict, Store, StoreError};

use super::core::ChannelCore;
use crate::error::ChannelError;

impl ChannelCore {
    /// Fills a post's media from the stored upload, which must exist in the channel's service,
    /// be unattached, and (for a user) be the caller's own upload. Other commands pass.
    pub(super) async fn resolve_media(
        &self,
        caller: &Caller,
        command: &mut ChannelCommand,
    ) -> Result<(), ChannelError> {
        let ChannelCommand::PostMessage(post) = command else {
            return Ok(());
        };
        let Some(wanted) = &post.media else {
            return Ok(());
        };
        let service = self.state()?.channel().service_sid;
        let media = self
            .store
            .get_media(service, wanted.sid)
            .await?
            .ok_or(DomainError::MediaNotFound)?;
        if let Caller::User { identity, .. } = caller {
            // Another user's upload is not theirs to post (nor to learn of).
            if media.author.as_deref() != Some(identity.as_str()) {
                return Err(DomainError::MediaNotFound.into());
            }
        }
        if let Some(attached) = media.message_sid {
            // Attached here to a message that was never stored (its commit failed after the
            // attach, with an outcome unknown then): the attachment is stale, and this post may
            // be that message's retry. This actor is the channel's only writer, so the store
            // says for sure now.
            let stale = media.channel_sid == Some(self.sid)
                && self.store.get_message(self.sid, attached).await?.is_none();
            if !stale {
                return Err(DomainError::MediaAttached { media: media.sid }.into());
            }
            self.store
                .detach_media(service, media.sid, attached)
                .await?;
        }
        post.media = Some(Box::new(media.summary()));
        Ok(())
    }

    /// Attaches the media of the message `events` add, before they are committed. On a refusal
    /// the caller must drop its applied state (nothing is committed).
    pub(super) async fn attach_media(
        &self,
        events: &[ChannelEvent],
        at: Timestamp,
    ) -> Result<Option<Message>, ChannelError> {
        let Some(message) = added_media_message(events) else {
            return Ok(None);
        };
        let media = message.media.as_ref().map(|m| m.sid);
        let Some(media) = media else {
            return Ok(None);
        };
        match self
            .store
            .attach_media(message.service_sid, media, self.sid, message.sid, at)
            .await
        {
            Ok(Some(_)) => Ok(Some(message.clone())),
            Ok(None) => Err(DomainError::MediaNotFound.into()),
            Err(StoreError::Conflict(Conflict::Sid)) => {
                Err(DomainError::MediaAttached { media }.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Undoes [`ChannelCore::attach_media`] for a message whose commit surely failed, before the
    /// failure is answered (a retry must find the media free). If it cannot, the attachment
    /// stays until a post in this channel finds it stale ([`ChannelCore::resolve_media`]).
    pub(super) async fn detach_media(&self, message: &Message) {
        let Some(media) = message.media.as_ref().map(|m| m.sid) else {
            return;
        };
        if let Err(e) = self
            .store
            .detach_media(message.service_sid, media, message.sid)
            .await
        {
            tracing::warn!(%media, error = %e, "cannot detach the media of an uncommitted message");
        }
    }

    /// Deletes the media of committed removals. A removed message's media record goes before
    /// the command is answered (a post that follows in this channel must not find the media
    /// free and attach it again); its bytes afterwards, in the background. A deleted channel's
    /// media (no post can follow there) go entirely in the background, so that a channel with
    /// many of them is answered at once. A failure is logged and leaves an orphan that no
    /// message shows.
    pub(super) async fn forget_removed_media(&self, events: &[ChannelEvent]) {
        let mut removed = Vec::new();
        let mut channel_deleted = false;
        for event in events {
            match &event.kind {
                ChannelEventKind::MessageRemoved { message } => {
                    if let Some(media) = &message.media {
                        removed.push((message.service_sid, media.sid));
                    }
                }
                ChannelEventKind::ChannelRemoved { .. } => channel_deleted = true,
                _ => {}
            }
        }
        let mut keys = Vec::with_capacity(removed.len());
        for (service, sid) in removed {
            if let Some(media) = delete_record(self.store.as_ref(), service, sid).await {
                keys.push((sid, media.blob_key()));
            }
        }
        if keys.is_empty() && !channel_deleted {
            return;
        }
        let store = self.store.clone();
        let blobs = self.blobs.clone();
        let channel = self.sid;
        tokio::spawn(async move {
            if channel_deleted {
                match store.channel_media(channel).await {
                    Ok(media) => {
                        for m in media {
                            if let Some(m) =
                                delete_record(store.as_ref(), m.service_sid, m.sid).await
                            {
                                keys.push((m.sid, m.blob_key()));
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%channel, error = %e, "cannot list a deleted channel's media");
                    }
                }
            }
            let Some(blobs) = blobs else {
                return;
            };
            for (sid, key) in keys {
                if let Err(e) = blobs.delete(&key).await {
                    tracing::warn!(media = %sid, error = %e, "cannot delete a removed media's bytes");
                }
            }
        });
    }
}

/// Deletes a media record, logging a failure; answers the record it deleted.
async fn delete_record(store: &dyn Store, service: ServiceSid, sid: MediaSid) -> Option<Media> {
    match store.delete_media(service, sid).await {
        Ok(deleted) => deleted,
        Err(e) => {
            tracing::warn!(media = %sid, error = %e, "cannot delete a removed message's media");
            None
        }
    }
}

fn added_media_message(events: &[ChannelEvent]) -> Option<&Message> {
    events.iter().find_map(|e| match &e.kind {
        ChannelEventKind::MessageAdded { message } if message.media.is_some() => Some(message),
        _ => None,
    })
}
