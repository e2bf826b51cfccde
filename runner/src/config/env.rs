//! `${NAME}` in header values, read from the environment so secrets stay out of job files.

/// Replaces every `${NAME}` in `text` with the environment variable `NAME`. A `$` not
/// followed by `{` is kept as written. The error names the variable, never a value.
pub(crate) fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "`${` without a closing `}`; write ${NAME}".to_string())?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("${{{name}}} is not a variable name; use letters, digits and `_`"));
        }
        let value = lookup(name).ok_or_else(|| {
            format!("environment variable {name} is not set (export it before starting the runner)")
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_string())
    }

    #[test]
    fn variables_are_replaced_and_dollars_kept() {
        assert_eq!(expand("Bearer ${TOKEN}", env).unwrap(), "Bearer s3cret");
        assert_eq!(expand("a$b ${TOKEN}${TOKEN}", env).unwrap(), "a$b s3crets3cret");
        assert_eq!(expand("plain", env).unwrap(), "plain");
    }

    #[test]
    fn missing_or_malformed_variables_are_named() {
        assert!(expand("${NOPE}", env).unwrap_err().contains("NOPE is not set"));
        assert!(expand("${TOKEN", env).unwrap_err().contains("closing"));
        assert!(expand("${A-B}", env).unwrap_err().contains("not a variable name"));
    }
}
