//! memberlist's encryption (memberlist-wire.md §3): AES-GCM with 16-, 24- or 32-byte keys,
//! `[version 1][12-byte nonce][ciphertext + tag]`, the primary key seals and every key opens.
//! Version 0 (PKCS#7-padded, memberlist protocol 1) is opened too but never sent.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};

use crate::msgpack::DecodeError;

type Aes192Gcm = AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

/// Bytes an encrypted blob adds (version 1): version, nonce, tag.
pub const OVERHEAD: usize = 1 + 12 + 16;

/// Most keys a keyring holds: every datagram is tried with each, so a ring filled by
/// install-key queries must stop somewhere (memberlist sets no limit).
pub const MAX_KEYS: usize = 64;

#[derive(Clone)]
enum Cipher {
    A128(Box<Aes128Gcm>),
    A192(Box<Aes192Gcm>),
    A256(Box<Aes256Gcm>),
}

impl Cipher {
    fn new(key: &[u8]) -> Option<Cipher> {
        Some(match key.len() {
            16 => Cipher::A128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            24 => Cipher::A192(Box::new(Aes192Gcm::new_from_slice(key).ok()?)),
            32 => Cipher::A256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            _ => return None,
        })
    }

    fn seal(&self, nonce: &[u8; 12], msg: &[u8], aad: &[u8]) -> Vec<u8> {
        let n = Nonce::from_slice(nonce);
        let p = Payload { msg, aad };
        // Sealing into a Vec only fails for absurd lengths, which we never build.
        match self {
            Cipher::A128(c) => c.encrypt(n, p),
            Cipher::A192(c) => c.encrypt(n, p),
            Cipher::A256(c) => c.encrypt(n, p),
        }
        .unwrap_or_default()
    }

    fn open(&self, nonce: &[u8], msg: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let n = Nonce::from_slice(nonce);
        let p = Payload { msg, aad };
        match self {
            Cipher::A128(c) => c.decrypt(n, p),
            Cipher::A192(c) => c.decrypt(n, p),
            Cipher::A256(c) => c.decrypt(n, p),
        }
        .ok()
    }
}

/// Serf's keyring file for `keys` (primary first), as its `writeKeyringFile` writes it: a
/// JSON array of standard base64 strings, indented by two spaces.
pub fn keyring_file_text(keys: &[Vec<u8>]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    // Base64 needs no JSON escapes.
    let lines: Vec<String> = keys
        .iter()
        .map(|k| format!("  \"{}\"", b64.encode(k)))
        .collect();
    format!("[\n{}\n]", lines.join(",\n"))
}

/// Serf's keyring: the primary key first.
#[derive(Clone)]
pub struct Keyring {
    ciphers: Vec<Cipher>,
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} keys)", self.ciphers.len())
    }
}

impl Keyring {
    /// A keyring of `keys`, primary first; each 16, 24 or 32 bytes.
    pub fn new(keys: &[Vec<u8>]) -> Result<Keyring, String> {
        if keys.is_empty() {
            return Err("a keyring needs at least one key".into());
        }
        let ciphers = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Cipher::new(k).ok_or_else(|| {
                    format!(
                        "key {} is {} bytes: AES keys are 16, 24 or 32",
                        i + 1,
                        k.len()
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Keyring {
            ciphers,
            keys: keys.to_vec(),
        })
    }

    /// The keys, primary first (what Serf's `_serf_list-keys` answers with).
    pub fn keys(&self) -> &[Vec<u8>] {
        &self.keys
    }

    /// The key that seals (index 0).
    pub fn primary(&self) -> &[u8] {
        &self.keys[0]
    }

    /// Installs `key` for opening, as memberlist's `AddKey`: a key already held is kept where
    /// it is; the primary does not change. Errors (state unchanged) carry memberlist's words.
    pub fn add_key(&mut self, key: &[u8]) -> Result<(), String> {
        let cipher =
            Cipher::new(key).ok_or_else(|| "key size must be 16, 24 or 32 bytes".to_owned())?;
        if self.keys.iter().any(|k| k == key) {
            return Ok(());
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(format!(
                "keyring is full ({MAX_KEYS} keys): remove one first"
            ));
        }
        self.keys.push(key.to_vec());
        self.ciphers.push(cipher);
        Ok(())
    }

    /// Makes an installed `key` the primary (`UseKey`); the others keep their order.
    pub fn use_key(&mut self, key: &[u8]) -> Result<(), String> {
        let i = self
            .keys
            .iter()
            .position(|k| k == key)
            .ok_or_else(|| "Requested key is not in the keyring".to_owned())?;
        let k = self.keys.remove(i);
        let c = self.ciphers.remove(i);
        self.keys.insert(0, k);
        self.ciphers.insert(0, c);
        Ok(())
    }

    /// Drops `key` (`RemoveKey`): never the primary; a key not held is no error.
    pub fn remove_key(&mut self, key: &[u8]) -> Result<(), String> {
        if self.keys[0] == key {
            return Err("Removing the primary key is not allowed".into());
        }
        if let Some(i) = self.keys.iter().position(|k| k == key) {
            self.keys.remove(i);
            self.ciphers.remove(i);
        }
        Ok(())
    }

    /// Seals `plain` with the primary key: `[1][nonce][ciphertext+tag]`.
    pub fn encrypt(&self, nonce: &[u8; 12], plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(OVERHEAD + plain.len());
        out.push(1);
        out.extend_from_slice(nonce);
        out.extend_from_slice(&self.ciphers[0].seal(nonce, plain, aad));
        out
    }

    /// Opens a blob with whichever key sealed it.
    pub fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let (&vsn, rest) = blob.split_first().ok_or(DecodeError::Truncated)?;
        if vsn > 1 {
            return Err(DecodeError::Invalid(format!("encryption version {vsn}")));
        }
        let min = if vsn == 0 { 45 } else { OVERHEAD };
        if blob.len() < min {
            return Err(DecodeError::Invalid("encrypted message too short".into()));
        }
        let (nonce, sealed) = rest.split_at(12);
        for c in &self.ciphers {
            if let Some(mut plain) = c.open(nonce, sealed, aad) {
                if vsn == 0 {
                    // PKCS#7: 1 to 16 pad bytes, each the pad length.
                    let pad = usize::from(*plain.last().unwrap_or(&0));
                    if pad == 0 || pad > 16 || pad > plain.len() {
                        return Err(DecodeError::Invalid("bad padding".into()));
                    }
                    plain.truncate(plain.len() - pad);
                }
                return Ok(plain);
            }
        }
        Err(DecodeError::Invalid("no key decrypts it".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_rotation() {
        let old = Keyring::new(&[vec![1; 32]]).unwrap();
        let both = Keyring::new(&[vec![2; 16], vec![1; 32]]).unwrap();
        let blob = old.encrypt(&[7; 12], b"hello", b"");
        assert_eq!(blob.len(), OVERHEAD + 5);
        assert_eq!(blob[0], 1);
        assert_eq!(both.decrypt(&blob, b"").unwrap(), b"hello");
        let other = Keyring::new(&[vec![3; 24]]).unwrap();
        assert!(other.decrypt(&blob, b"").is_err());
        assert!(
            old.decrypt(&blob, b"aad").is_err(),
            "associated data is authenticated"
        );
        assert!(old.decrypt(&blob[..20], b"").is_err());
        assert!(Keyring::new(&[vec![0; 5]]).is_err());
    }

    #[test]
    fn the_keyring_file_is_written_as_serf_writes_it() {
        let text = keyring_file_text(&[vec![0; 16], vec![0xff; 32]]);
        assert_eq!(
            text,
            "[\n  \"AAAAAAAAAAAAAAAAAAAAAA==\",\n  \"//////////////////////////////////////////8=\"\n]"
        );
    }

    #[test]
    fn install_use_and_remove_follow_memberlist() {
        let (a, b) = (vec![1u8; 32], vec![2u8; 16]);
        let mut ring = Keyring::new(std::slice::from_ref(&a)).unwrap();
        let by_a = ring.encrypt(&[1; 12], b"old", b"");
        assert_eq!(
            ring.add_key(&[0; 5]),
            Err("key size must be 16, 24 or 32 bytes".into())
        );
        ring.add_key(&b).unwrap();
        ring.add_key(&b).unwrap();
        assert_eq!(
            ring.keys(),
            [a.clone(), b.clone()],
            "installed once, primary kept"
        );
        assert_eq!(
            ring.use_key(&[3; 32]),
            Err("Requested key is not in the keyring".into())
        );
        ring.use_key(&b).unwrap();
        assert_eq!(ring.primary(), &b[..]);
        assert_eq!(ring.keys(), [b.clone(), a.clone()]);
        // The new primary seals; the old key still opens what it sealed.
        let by_b = ring.encrypt(&[2; 12], b"new", b"");
        assert_eq!(
            Keyring::new(std::slice::from_ref(&b))
                .unwrap()
                .decrypt(&by_b, b"")
                .unwrap(),
            b"new"
        );
        assert_eq!(ring.decrypt(&by_a, b"").unwrap(), b"old");
        assert_eq!(
            ring.remove_key(&b),
            Err("Removing the primary key is not allowed".into())
        );
        ring.remove_key(&[9; 16]).unwrap();
        ring.remove_key(&a).unwrap();
        assert_eq!(ring.keys(), std::slice::from_ref(&b));
        assert!(
            ring.decrypt(&by_a, b"").is_err(),
            "a removed key opens nothing"
        );
        // Bounded: a flood of installs stops at MAX_KEYS.
        for i in 0..200u8 {
            let _ = ring.add_key(&[i; 24]);
        }
        assert_eq!(ring.keys().len(), MAX_KEYS);
        assert!(ring.add_key(&[250; 32]).unwrap_err().contains("full"));
    }
}
