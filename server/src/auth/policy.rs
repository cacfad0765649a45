//! IAM policy documents, as AWS evaluates them for one request: a
//! statement applies when its action, resource, principal (resource
//! policies) and conditions all match; an applicable `Deny` beats any
//! `Allow`; nothing applicable is an implicit deny.
//!
//! Elements and condition operators Runnel does not evaluate are refused
//! when the policy is read: a policy that silently meant something else
//! here than on AWS would let the wrong caller in.

use std::net::IpAddr;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    allow: bool,
    actions: Patterns,
    resources: Patterns,
    /// Only in resource policies: who the statement is about.
    principals: Option<Vec<String>>,
    conditions: Vec<Condition>,
}

/// `Action`/`NotAction`, `Resource`/`NotResource`.
#[derive(Debug, Clone, PartialEq)]
struct Patterns {
    negated: bool,
    patterns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    operator: Operator,
    key: ConditionKey,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Operator {
    IpAddress,
    NotIpAddress,
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    Bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ConditionKey {
    SourceIp,
    SecureTransport,
    Username,
    PrincipalArn,
    PrincipalAccount,
}

/// What one request is, for evaluation.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `kinesis:PutRecord`.
    pub action: &'a str,
    /// The ARN acted on, or `*` for operations on no resource.
    pub resource: &'a str,
    pub principal_arn: &'a str,
    pub principal_account: &'a str,
    pub username: &'a str,
    pub source_ip: Option<IpAddr>,
    pub secure_transport: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// No statement applies.
    Silent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(String);

fn error(message: impl Into<String>) -> PolicyError {
    PolicyError(message.into())
}

impl Policy {
    /// `resource_policy`: whether statements name a `Principal` (a
    /// resource's policy) or must not (a key's policy).
    pub fn parse(text: &str, resource_policy: bool) -> Result<Policy, PolicyError> {
        let document: Value = serde_json::from_str(text)
            .map_err(|e| error(format!("the policy is not JSON: {e}")))?;
        let Value::Object(document) = document else {
            return Err(error("the policy must be a JSON object"));
        };
        for key in document.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(error(format!("unsupported policy element {key}")));
            }
        }
        let statements = match document.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(item @ Value::Object(_)) => vec![item],
            _ => {
                return Err(error(
                    "the policy needs a Statement (an object or an array)",
                ));
            }
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, statement)| {
                parse_statement(statement, resource_policy)
                    .map_err(|e| error(format!("Statement {}: {}", i + 1, e.0)))
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }

    pub fn evaluate(&self, request: &Request<'_>) -> Decision {
        let mut decision = Decision::Silent;
        for statement in &self.statements {
            if statement.applies(request) {
                if !statement.allow {
                    return Decision::Deny;
                }
                decision = Decision::Allow;
            }
        }
        decision
    }
}

fn parse_statement(value: &Value, resource_policy: bool) -> Result<Statement, PolicyError> {
    let Value::Object(fields) = value else {
        return Err(error("a statement must be an object"));
    };
    for key in fields.keys() {
        let known = matches!(
            key.as_str(),
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Condition"
        ) || (resource_policy && key == "Principal");
        if !known {
            return Err(error(format!("unsupported element {key}")));
        }
    }
    let allow = match fields.get("Effect").and_then(Value::as_str) {
        Some("Allow") => true,
        Some("Deny") => false,
        _ => return Err(error("Effect must be \"Allow\" or \"Deny\"")),
    };
    let actions = patterns(fields, "Action", "NotAction")?;
    let resources = patterns(fields, "Resource", "NotResource")?;
    let principals = if resource_policy {
        Some(principals(fields.get("Principal"))?)
    } else {
        None
    };
    let conditions = match fields.get("Condition") {
        None => Vec::new(),
        Some(value) => conditions(value)?,
    };
    Ok(Statement {
        allow,
        actions,
        resources,
        principals,
        conditions,
    })
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(error(format!("{what} values must be strings"))),
            })
            .collect(),
        Value::Bool(b) => Ok(vec![b.to_string()]),
        _ => Err(error(format!(
            "{what} must be a string or an array of strings"
        ))),
    }
}

fn patterns(
    fields: &serde_json::Map<String, Value>,
    positive: &str,
    negative: &str,
) -> Result<Patterns, PolicyError> {
    match (fields.get(positive), fields.get(negative)) {
        (Some(value), None) => Ok(Patterns {
            negated: false,
            patterns: strings(value, positive)?,
        }),
        (None, Some(value)) => Ok(Patterns {
            negated: true,
            patterns: strings(value, negative)?,
        }),
        _ => Err(error(format!("exactly one of {positive} and {negative}"))),
    }
}

/// `"*"`, `{"AWS": "*" | account | ARN | [...]}`, each kept as written.
fn principals(value: Option<&Value>) -> Result<Vec<String>, PolicyError> {
    match value {
        Some(Value::String(star)) if star == "*" => Ok(vec!["*".into()]),
        Some(Value::Object(map)) => {
            let mut out = Vec::new();
            for (kind, names) in map {
                if kind != "AWS" {
                    return Err(error(format!("unsupported Principal type {kind}")));
                }
                out.extend(strings(names, "Principal")?);
            }
            Ok(out)
        }
        _ => Err(error("a resource policy statement needs a Principal")),
    }
}

fn conditions(value: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(operators) = value else {
        return Err(error("Condition must be an object"));
    };
    let mut out = Vec::new();
    for (operator_name, keys) in operators {
        let operator = match operator_name.as_str() {
            "IpAddress" => Operator::IpAddress,
            "NotIpAddress" => Operator::NotIpAddress,
            "StringEquals" => Operator::StringEquals,
            "StringNotEquals" => Operator::StringNotEquals,
            "StringEqualsIgnoreCase" => Operator::StringEqualsIgnoreCase,
            "StringLike" => Operator::StringLike,
            "StringNotLike" => Operator::StringNotLike,
            "Bool" => Operator::Bool,
            other => return Err(error(format!("unsupported condition operator {other}"))),
        };
        let Value::Object(keys) = keys else {
            return Err(error(format!("{operator_name} must map keys to values")));
        };
        for (key_name, values) in keys {
            let key = match key_name.to_ascii_lowercase().as_str() {
                "aws:sourceip" => ConditionKey::SourceIp,
                "aws:securetransport" => ConditionKey::SecureTransport,
                "aws:username" => ConditionKey::Username,
                "aws:principalarn" => ConditionKey::PrincipalArn,
                "aws:principalaccount" => ConditionKey::PrincipalAccount,
                _ => return Err(error(format!("unsupported condition key {key_name}"))),
            };
            let values = strings(values, key_name)?;
            if matches!(operator, Operator::IpAddress | Operator::NotIpAddress) {
                if key != ConditionKey::SourceIp {
                    return Err(error(format!(
                        "{operator_name} applies to aws:SourceIp only"
                    )));
                }
                for value in &values {
                    parse_cidr(value)
                        .ok_or_else(|| error(format!("{value} is not an IP address or CIDR")))?;
                }
            }
            out.push(Condition {
                operator,
                key,
                values,
            });
        }
    }
    Ok(out)
}

impl Statement {
    fn applies(&self, request: &Request<'_>) -> bool {
        let action = self.actions.patterns.iter().any(|p| {
            glob(
                &p.to_ascii_lowercase(),
                &request.action.to_ascii_lowercase(),
            )
        });
        let resource = self
            .resources
            .patterns
            .iter()
            .any(|p| arn_matches(p, request.resource));
        action != self.actions.negated
            && resource != self.resources.negated
            && self
                .principals
                .as_ref()
                .is_none_or(|principals| principals.iter().any(|p| principal_matches(p, request)))
            && self.conditions.iter().all(|c| c.holds(request))
    }
}

fn principal_matches(pattern: &str, request: &Request<'_>) -> bool {
    pattern == "*"
        || pattern == request.principal_account
        || pattern == format!("arn:aws:iam::{}:root", request.principal_account)
        || pattern == request.principal_arn
}

impl Condition {
    fn holds(&self, request: &Request<'_>) -> bool {
        let actual = match self.key {
            ConditionKey::SourceIp => {
                let Some(ip) = request.source_ip else {
                    // AWS: a condition on a key the request lacks does not
                    // match, except for the negated operators.
                    return matches!(self.operator, Operator::NotIpAddress);
                };
                let inside = self
                    .values
                    .iter()
                    .filter_map(|v| parse_cidr(v))
                    .any(|(net, bits)| in_network(ip, net, bits));
                return match self.operator {
                    Operator::IpAddress => inside,
                    Operator::NotIpAddress => !inside,
                    _ => false,
                };
            }
            ConditionKey::SecureTransport => request.secure_transport.to_string(),
            ConditionKey::Username => request.username.to_string(),
            ConditionKey::PrincipalArn => request.principal_arn.to_string(),
            ConditionKey::PrincipalAccount => request.principal_account.to_string(),
        };
        let any = |f: &dyn Fn(&str) -> bool| self.values.iter().any(|v| f(v));
        match self.operator {
            Operator::StringEquals | Operator::Bool => any(&|v| v == actual),
            Operator::StringNotEquals => !any(&|v| v == actual),
            Operator::StringEqualsIgnoreCase => any(&|v| v.eq_ignore_ascii_case(&actual)),
            Operator::StringLike => any(&|v| glob(v, &actual)),
            Operator::StringNotLike => !any(&|v| glob(v, &actual)),
            Operator::IpAddress | Operator::NotIpAddress => false,
        }
    }
}

/// IAM's wildcards: `*` any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Greedy with backtracking to the last `*`: linear in practice, and
    // never exponential on hostile patterns.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// An ARN pattern matches segment by segment (a `*` does not reach from
/// the region into the account); the resource part, which may hold `:`
/// and `/`, as one.
fn arn_matches(pattern: &str, arn: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let pattern_parts: Vec<&str> = pattern.splitn(6, ':').collect();
    let arn_parts: Vec<&str> = arn.splitn(6, ':').collect();
    if pattern_parts.len() != 6 || arn_parts.len() != 6 {
        return glob(pattern, arn);
    }
    pattern_parts
        .iter()
        .zip(&arn_parts)
        .all(|(pattern, part)| glob(pattern, part))
}

fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (address, bits) = match text.split_once('/') {
        Some((address, bits)) => (address, Some(bits.parse::<u8>().ok()?)),
        None => (text, None),
    };
    let address: IpAddr = address.trim().parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((address, bits))
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    // A dual-stack socket sees an IPv4 peer as `::ffff:a.b.c.d`; it must
    // still meet IPv4 networks.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let prefix = |value: u128, width: u32| {
        let bits = u32::from(bits).min(width);
        if bits == 0 {
            0
        } else {
            value >> (width - bits)
        }
    };
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            prefix(u128::from(u32::from(ip)), 32) == prefix(u128::from(u32::from(net)), 32)
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            prefix(u128::from(ip), 128) == prefix(u128::from(net), 128)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(action: &'a str, resource: &'a str, ip: &str) -> Request<'a> {
        Request {
            action,
            resource,
            principal_arn: "arn:aws:iam::000000000000:user/alice",
            principal_account: "000000000000",
            username: "alice",
            source_ip: ip.parse().ok(),
            secure_transport: false,
        }
    }

    const STREAM: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/orders";

    #[test]
    fn wildcard_actions_allow_reads_only() {
        let policy = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesis:Get*","kinesis:Describe*","kinesis:List*"],"Resource":"*"}]}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            policy.evaluate(&request("kinesis:GetRecords", STREAM, "127.0.0.1")),
            Decision::Allow
        );
        assert_eq!(
            policy.evaluate(&request("kinesis:PutRecord", STREAM, "127.0.0.1")),
            Decision::Silent
        );
    }

    #[test]
    fn deny_beats_allow_and_resources_match_by_segment() {
        let policy = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"arn:aws:kinesis:*:*:stream/*"},
                             {"Effect":"Deny","Action":"kinesis:DeleteStream","Resource":"arn:aws:kinesis:*:*:stream/orders"}]}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            policy.evaluate(&request("kinesis:DeleteStream", STREAM, "10.0.0.1")),
            Decision::Deny
        );
        assert_eq!(
            policy.evaluate(&request(
                "kinesis:DeleteStream",
                "arn:aws:kinesis:us-east-1:000000000000:stream/other",
                "10.0.0.1"
            )),
            Decision::Allow
        );
        assert_eq!(
            policy.evaluate(&request(
                "firehose:PutRecord",
                "arn:aws:firehose:us-east-1:000000000000:deliverystream/x",
                "10.0.0.1"
            )),
            Decision::Silent
        );
    }

    #[test]
    fn source_ip_conditions_match_networks() {
        let policy = Policy::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["10.1.0.0/16","::1"]}}}}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            policy.evaluate(&request("kinesis:PutRecord", STREAM, "10.1.2.3")),
            Decision::Allow
        );
        assert_eq!(
            policy.evaluate(&request("kinesis:PutRecord", STREAM, "10.2.0.1")),
            Decision::Silent
        );
        assert_eq!(
            policy.evaluate(&request("kinesis:PutRecord", STREAM, "::1")),
            Decision::Allow
        );
    }

    #[test]
    fn resource_policies_name_principals() {
        let policy = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kinesis:GetRecords","Resource":"*"}]}"#,
            true,
        )
        .unwrap();
        let mut other = request("kinesis:GetRecords", STREAM, "127.0.0.1");
        assert_eq!(policy.evaluate(&other), Decision::Silent);
        other.principal_account = "111122223333";
        assert_eq!(policy.evaluate(&other), Decision::Allow);
    }

    #[test]
    fn what_is_not_evaluated_is_refused_by_name() {
        for (text, named) in [
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01"}}}}"#,
                "DateGreaterThan",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","NotPrincipal":"*","Action":"*","Resource":"*"}}"#,
                "NotPrincipal",
            ),
            (
                r#"{"Statement":{"Effect":"Maybe","Action":"*","Resource":"*"}}"#,
                "Effect",
            ),
        ] {
            let message = Policy::parse(text, false).unwrap_err().to_string();
            assert!(message.contains(named), "{message}");
        }
    }

    #[test]
    fn glob_handles_stars_and_question_marks() {
        assert!(glob("kinesis:get*", "kinesis:getrecords"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("s?ream", "stream"));
        assert!(glob("*", ""));
        assert!(!glob("", "x"));
    }
}
