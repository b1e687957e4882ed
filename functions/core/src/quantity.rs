//! Spark's resource strings: memory sizes such as `512m` or `4g` and core counts, parsed so caps can be
//! compared.

/// Bytes in a Spark memory string. Spark reads a bare number as mebibytes for driver and executor memory;
/// suffixes `k`, `m`, `g`, `t`, `p` (optionally followed by `b`, any case) are binary multiples.
pub fn parse_memory_bytes(text: &str) -> Option<u64> {
    parse_bytes(text, 1 << 20)
}

/// Bytes in a Spark size string whose bare numbers count `default_unit` bytes (Spark's `bytesConf` with
/// that unit: mebibytes for memory settings, bytes for `spark.memory.offHeap.size`).
pub fn parse_bytes(text: &str, default_unit: u64) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let unit_start = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(unit_start);
    let number: u64 = digits.parse().ok()?;
    let multiplier = match unit {
        "" => default_unit,
        "b" => 1,
        _ => {
            let shift = match unit.strip_suffix('b').unwrap_or(unit) {
                "k" => 10,
                "m" => 20,
                "g" => 30,
                "t" => 40,
                "p" => 50,
                _ => return None,
            };
            1u64 << shift
        }
    };
    number.checked_mul(multiplier)
}

/// A core count: Spark's `spark.driver.cores` and `spark.executor.cores` are positive integers.
pub fn parse_cores(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|&cores| cores > 0)
}

/// Millicores in a Kubernetes CPU quantity as Spark passes `request.cores` / `limit.cores` through:
/// `2`, `0.5`, `1.25` or `500m`; positive, at most three decimals.
pub fn parse_cpu_millis(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(millis) = text.strip_suffix('m') {
        return millis
            .parse::<u64>()
            .ok()
            .filter(|m| *m > 0 && millis.bytes().all(|b| b.is_ascii_digit()));
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty()
        || fraction.len() > 3
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: u64 = format!("{fraction:0<3}").parse().ok()?;
    whole
        .checked_mul(1000)?
        .checked_add(fraction)
        .filter(|m| *m > 0)
}

/// A Spark boolean: `true` or `false` in any case, surrounding whitespace ignored (Spark's
/// `booleanConf` reads it so; anything else fails the job).
pub fn parse_bool(text: &str) -> Option<bool> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_suffixes_are_binary_and_bare_numbers_are_mebibytes() {
        assert_eq!(parse_memory_bytes("512m"), Some(512 << 20));
        assert_eq!(parse_memory_bytes("4g"), Some(4 << 30));
        assert_eq!(parse_memory_bytes("4GB"), Some(4 << 30));
        assert_eq!(parse_memory_bytes("1024k"), Some(1 << 20));
        assert_eq!(parse_memory_bytes("2048"), Some(2048 << 20));
        for bad in ["", "m", "1.5g", "12x", "-1g"] {
            assert_eq!(parse_memory_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_take_their_default_unit() {
        assert_eq!(parse_bytes("1024", 1), Some(1024));
        assert_eq!(parse_bytes("1024b", 1 << 20), Some(1024));
        assert_eq!(parse_bytes("1k", 1), Some(1024));
    }

    #[test]
    fn cpu_quantities_are_millicores() {
        assert_eq!(parse_cpu_millis("2"), Some(2000));
        assert_eq!(parse_cpu_millis("0.5"), Some(500));
        assert_eq!(parse_cpu_millis(".25"), Some(250));
        assert_eq!(parse_cpu_millis("500m"), Some(500));
        for bad in ["", "0", "0m", "-1", "1.2345", "1e3", "abc", "m", "."] {
            assert_eq!(parse_cpu_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn booleans_are_sparks() {
        assert_eq!(parse_bool(" TRUE "), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn cores_are_positive_integers() {
        assert_eq!(parse_cores("2"), Some(2));
        assert_eq!(parse_cores("0"), None);
        assert_eq!(parse_cores("0.5"), None);
    }
}
