//! Card-number masking for free text written to a case (notes, variable values).
//!
//! A run of 13–19 digits, optionally split by single spaces or dashes, that passes the Luhn
//! check is masked to keep at most the first 6 and last 4 digits (PCI DSS 3.4.1 display
//! rule); separators are kept. Other digit runs (order numbers, phone numbers) are left alone.

/// Luhn check over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &c) in digits.iter().rev().enumerate() {
        let mut v = (c - b'0') as u32;
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    matches!(sum % 10, 0)
}

/// `text` with every Luhn-valid card number masked.
pub fn mask_pans(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let prev_alnum = i > 0 && chars[i - 1].is_alphanumeric();
        if !c.is_ascii_digit() || prev_alnum {
            out.push(c);
            i += 1;
            continue;
        }
        // Maximal run of digits with single separators between digits.
        let start = i;
        let mut end = i;
        let mut j = i;
        while j < chars.len() {
            if chars[j].is_ascii_digit() {
                end = j + 1;
                j += 1;
            } else if (chars[j] == ' ' || chars[j] == '-')
                && j + 1 < chars.len()
                && chars[j + 1].is_ascii_digit()
            {
                j += 1;
            } else {
                break;
            }
        }
        let run = &chars[start..end];
        let digits: Vec<u8> = run
            .iter()
            .filter(|c| c.is_ascii_digit())
            .map(|&c| c as u8)
            .collect();
        let next_alnum = end < chars.len() && chars[end].is_alphanumeric();
        if (13..=19).contains(&digits.len()) && !next_alnum && luhn_valid(&digits) {
            let n = digits.len();
            let mut k = 0;
            for &ch in run {
                if ch.is_ascii_digit() {
                    out.push(if k < 6 || k >= n - 4 { ch } else { '*' });
                    k += 1;
                } else {
                    out.push(ch);
                }
            }
        } else {
            out.extend(run.iter());
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_luhn_valid_numbers() {
        assert_eq!(
            mask_pans("card 4111111111111111 used"),
            "card 411111******1111 used"
        );
        assert_eq!(mask_pans("4111-1111-1111-1111"), "4111-11**-****-1111");
        assert_eq!(mask_pans("5555 5555 5555 4444."), "5555 55** **** 4444.");
        // 15-digit Amex test number.
        assert_eq!(mask_pans("378282246310005"), "378282*****0005");
    }

    #[test]
    fn leaves_other_numbers_alone() {
        // Luhn-invalid 16 digits.
        assert_eq!(mask_pans("4111111111111112"), "4111111111111112");
        // Too short / too long.
        assert_eq!(mask_pans("order 123456789012"), "order 123456789012");
        assert_eq!(mask_pans("41111111111111111111"), "41111111111111111111");
        // Part of a word.
        assert_eq!(mask_pans("id4111111111111111"), "id4111111111111111");
        assert_eq!(mask_pans("tel 03-1234-5678"), "tel 03-1234-5678");
    }
}
