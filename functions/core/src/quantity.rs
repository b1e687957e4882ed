//! Spark's resource strings: memory sizes such as `512m` or `4g` and core counts, parsed so caps can be
//! compared.

/// Bytes in a Spark memory string. Spark reads a bare number as mebibytes for driver and executor memory;
/// suffixes `k`, `m`, `g`, `t`, `p` (optionally followed by `b`, any case) are binary multiples.
pub fn parse_memory_bytes(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let unit_start = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(unit_start);
    let number: u64 = digits.parse().ok()?;
    let shift = match unit.strip_suffix('b').unwrap_or(unit) {
        "" | "m" => 20,
        "k" => 10,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return None,
    };
    number.checked_mul(1u64 << shift)
}

/// A core count: Spark's `spark.driver.cores` and `spark.executor.cores` are positive integers.
pub fn parse_cores(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|&cores| cores > 0)
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
    fn cores_are_positive_integers() {
        assert_eq!(parse_cores("2"), Some(2));
        assert_eq!(parse_cores("0"), None);
        assert_eq!(parse_cores("0.5"), None);
    }
}
