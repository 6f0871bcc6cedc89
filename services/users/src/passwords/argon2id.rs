//! argon2id hashes as PHC strings, computed in memory the caller keeps
//! from one hash to the next. A hash with the default parameters fills
//! 19 MiB: allocated afresh each time, that is 19 MiB mapped, faulted in
//! page by page and handed back at every sign-in, and a process whose
//! resident memory swings by that much with each one.

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{
        self,
        phc::{Output, ParamsString, PasswordHash, Salt},
    },
};

use crate::error::UsersError;

/// Memory for one hash with the parameters new hashes get.
pub fn memory() -> Vec<Block> {
    vec![Block::default(); Params::DEFAULT.block_count()]
}

/// A PHC-format argon2id hash of `password`, with the default parameters
/// and a fresh salt, computed in `memory`.
pub fn hash(password: &[u8], memory: &mut Vec<Block>) -> Result<String, UsersError> {
    let params = Params::DEFAULT;
    let salt = password_hash::try_generate_salt().map_err(failed)?;
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone()),
        password,
        &salt,
        &mut output,
        memory,
    )?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(failed)?,
        salt: Some(Salt::new(&salt).map_err(failed)?),
        hash: Some(Output::new(&output).map_err(failed)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` hashes to `hash`, a PHC string of any argon2
/// variant, version and parameters (its own are used), computed in
/// `memory`. A hash that cannot be read is an error, not a mismatch.
pub fn verify(password: &[u8], hash: &str, memory: &mut Vec<Block>) -> Result<bool, UsersError> {
    let stored = PasswordHash::new(hash).map_err(failed)?;
    let algorithm = Algorithm::try_from(stored.algorithm.as_str()).map_err(failed)?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(failed)?
        .unwrap_or_default();
    let params = Params::try_from(&stored).map_err(failed)?;
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return Err(UsersError::Hashing(
            "a stored hash without its salt or output".into(),
        ));
    };
    let mut output = [0u8; Output::MAX_LENGTH];
    let output = output
        .get_mut(..expected.len())
        .ok_or_else(|| UsersError::Hashing("a stored hash's output is too long".into()))?;
    compute(
        Argon2::new(algorithm, version, params),
        password,
        salt.as_ref(),
        output,
        memory,
    )?;
    // `Output`'s equality takes the same time wherever the bytes differ.
    Ok(Output::new(output).map_err(failed)? == *expected)
}

/// Hashes into `output` in the first blocks of `memory`, grown first when
/// the parameters ask for more than it has (a hash stored with a larger
/// memory cost).
fn compute(
    hasher: Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    output: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), UsersError> {
    let blocks = hasher.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    hasher
        .hash_password_into_with_memory(password, salt, output, &mut memory[..blocks])
        .map_err(failed)
}

fn failed(error: impl std::fmt::Display) -> UsersError {
    UsersError::Hashing(error.to_string())
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[test]
    fn hashes_are_the_librarys_both_ways() {
        let mut memory = memory();
        let ours = hash(b"a password 1", &mut memory).expect("hash");
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).expect("PHC");
        assert!(
            Argon2::default()
                .verify_password(b"a password 1", &parsed)
                .is_ok()
        );
        assert!(verify(b"a password 1", &ours, &mut memory).expect("verify"));
        assert!(!verify(b"a password 2", &ours, &mut memory).expect("verify"));

        let theirs = Argon2::default()
            .hash_password(b"another one")
            .expect("hash")
            .to_string();
        assert!(verify(b"another one", &theirs, &mut memory).expect("verify"));
        assert!(!verify(b"another two", &theirs, &mut memory).expect("verify"));
    }

    #[test]
    fn a_hash_stored_with_other_parameters_is_checked_with_its_own() {
        let mut memory = Vec::new();
        for params in [
            Params::new(8 * 1024, 1, 1, None),
            Params::new(24 * 1024, 2, 2, Some(48)),
        ] {
            let params = params.expect("params");
            let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"old password")
                .expect("hash")
                .to_string();
            assert!(verify(b"old password", &stored, &mut memory).expect("verify"));
            assert!(!verify(b"new password", &stored, &mut memory).expect("verify"));
        }
        // Grown for the larger one, and kept.
        assert_eq!(memory.len(), 24 * 1024);
    }

    #[test]
    fn a_hash_that_cannot_be_read_is_an_error() {
        let mut memory = memory();
        for stored in [
            "",
            "plain text",
            "$scrypt$ln=16,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "$argon2id$v=19$m=19456,t=2,p=1$c2hvcHNhbHRzaG9wc2FsdA",
        ] {
            assert!(verify(b"x", stored, &mut memory).is_err(), "{stored:?}");
        }
    }
}
