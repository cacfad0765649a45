//! The `[auth]` settings: access keys (from `[[auth.keys]]` or one from
//! `RUNNEL_ACCESS_KEY_ID`/`RUNNEL_SECRET_ACCESS_KEY`), each with the
//! principal it signs as and its policy, and where the audit log goes.

use std::path::PathBuf;

use serde::Deserialize;

use super::policy::Policy;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    keys: Option<Vec<KeyFile>>,
    audit_log: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    access_key_id: String,
    secret_access_key: String,
    principal: Option<String>,
    /// The account the principal belongs to; another account than the
    /// server's makes its calls cross-account, as for AWS.
    account: Option<String>,
    policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthSettings {
    pub keys: Vec<AccessKey>,
    /// Default: `<data dir>/audit.log`.
    pub audit_log: Option<PathBuf>,
    /// `--insecure`: no keys on a non-loopback address is allowed.
    pub insecure: bool,
}

#[derive(Clone, PartialEq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub principal: String,
    pub account: Option<String>,
    /// None: the key may do everything.
    pub policy: Option<Policy>,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("principal", &self.principal)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

const ENV_KEY_ID: &str = "RUNNEL_ACCESS_KEY_ID";
const ENV_SECRET: &str = "RUNNEL_SECRET_ACCESS_KEY";

impl AuthSettings {
    /// The file's keys and the environment's one; an error names the key
    /// and what is wrong with it.
    pub fn resolve(
        file: AuthFile,
        insecure: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<AuthSettings, String> {
        let mut keys = Vec::new();
        for key in file.keys.unwrap_or_default() {
            if key.access_key_id.is_empty() || key.secret_access_key.is_empty() {
                return Err(
                    "auth.keys: access_key_id and secret_access_key must not be empty".into(),
                );
            }
            let policy = key
                .policy
                .as_deref()
                .map(|text| Policy::parse(text, false))
                .transpose()
                .map_err(|e| format!("auth.keys {}: policy: {e}", key.access_key_id))?;
            keys.push(AccessKey {
                principal: key.principal.unwrap_or_else(|| key.access_key_id.clone()),
                access_key_id: key.access_key_id,
                secret_access_key: key.secret_access_key,
                account: key.account,
                policy,
            });
        }
        match (env(ENV_KEY_ID), env(ENV_SECRET)) {
            (Some(access_key_id), Some(secret_access_key)) => keys.push(AccessKey {
                principal: access_key_id.clone(),
                access_key_id,
                secret_access_key,
                account: None,
                policy: None,
            }),
            (None, None) => {}
            _ => {
                return Err(format!(
                    "{ENV_KEY_ID} and {ENV_SECRET} must be set together"
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(key) = keys.iter().find(|k| !seen.insert(k.access_key_id.clone())) {
            return Err(format!(
                "auth.keys: access key {} is configured twice",
                key.access_key_id
            ));
        }
        Ok(AuthSettings {
            keys,
            audit_log: file.audit_log,
            insecure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> AuthFile {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn keys_come_from_the_file_and_one_from_the_environment() {
        let settings = AuthSettings::resolve(
            file(
                r#"
                audit_log = "/tmp/audit.log"
                [[keys]]
                access_key_id = "AKIAALICE"
                secret_access_key = "s1"
                principal = "alice"
                policy = '{"Statement": {"Effect": "Allow", "Action": "kinesis:Get*", "Resource": "*"}}'
                "#,
            ),
            false,
            |name| match name {
                "RUNNEL_ACCESS_KEY_ID" => Some("AKIAENV".into()),
                "RUNNEL_SECRET_ACCESS_KEY" => Some("s2".into()),
                _ => None,
            },
        )
        .unwrap();
        assert_eq!(settings.keys.len(), 2);
        assert_eq!(settings.keys[0].principal, "alice");
        assert!(settings.keys[0].policy.is_some());
        assert_eq!(settings.keys[1].access_key_id, "AKIAENV");
        assert!(settings.keys[1].policy.is_none());
        assert!(!format!("{:?}", settings.keys[0]).contains("s1"));
    }

    #[test]
    fn a_bad_policy_or_half_an_environment_key_is_an_error() {
        let error = AuthSettings::resolve(
            file(
                "[[keys]]\naccess_key_id = \"K\"\nsecret_access_key = \"s\"\npolicy = '{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\"}}'\n",
            ),
            false,
            |_| None,
        )
        .unwrap_err();
        assert!(error.contains("auth.keys K: policy"), "{error}");
        let error = AuthSettings::resolve(AuthFile::default(), false, |name| {
            (name == "RUNNEL_ACCESS_KEY_ID").then(|| "K".to_string())
        })
        .unwrap_err();
        assert!(error.contains("set together"), "{error}");
    }
}
