//! Sharing-group keys: installing a rotated key addressed to this node, and rotating one.

use super::EventLoop;
use crate::group::{GroupKey, WrappedKey};
use crate::node::{Error, Event, Rotation};
use crate::validate::Accepted;
use crate::wire::Envelope;

impl EventLoop {
    pub(super) fn install_group_key(&mut self, keys: &[WrappedKey]) {
        let ours = x25519_dalek::PublicKey::from(self.identity.agreement()).to_bytes();
        let Some(w) = keys.iter().find(|k| k.recipient == ours) else {
            return;
        };
        if self.keyring.get(&w.group, w.epoch).is_ok() {
            return;
        }
        match GroupKey::unwrap(w, self.identity.agreement()) {
            Ok(key) => {
                let (group, epoch) = (key.group.clone(), key.epoch);
                self.keyring.insert(key);
                self.emit(Event::GroupKey { group, epoch });
            }
            Err(e) => self.warnings.push(format!("group key rotation: {e}")),
        }
    }

    pub(super) fn rotate_group(&mut self, group: String) -> Result<Rotation, Error> {
        let own = self.membership.credential.clone();
        if !own.in_group(&group) {
            return Err(Error::NotInGroup(group));
        }
        let now = self.clock.now();
        let revoked = &self.validator.revocations().serials;
        let mut recipients: Vec<[u8; 32]> = self
            .members
            .values()
            .filter(|c| c.in_group(&group) && !revoked.contains(&c.serial) && now < c.expires)
            .map(|c| c.agreement)
            .collect();
        recipients.push(own.agreement);
        recipients.sort();
        recipients.dedup();
        let key = self.keyring.rotate(&group);
        let wrapped: Vec<WrappedKey> = recipients.iter().map(|r| key.wrap_for(r)).collect();
        let env = Envelope::group_keys(&self.identity, &own, now, wrapped);
        let bytes = env.encode();
        let published = self.send(bytes.clone())?;
        self.validator.record_own(&env);
        let acc = Accepted {
            envelope: env,
            bytes,
            item: None,
            hospital: own.hospital.clone(),
            author: self.identity.peer_id(),
        };
        self.store_own(acc);
        Ok(Rotation {
            group,
            epoch: key.epoch,
            recipients: recipients.len(),
            published,
        })
    }
}
