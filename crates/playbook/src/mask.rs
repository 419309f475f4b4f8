//! Card-data masking for free text written to a case (notes, variable values, reasons): the
//! journal is permanent and hash-chained, so card data must never reach it in clear.
//!
//! * Card numbers: a run of 13–19 digits, optionally split by single separators (space, `-`,
//!   `.`), that passes the Luhn check is masked to keep at most the first 6 and last 4 digits
//!   (PCI DSS 3.4.1 display rule); separators are kept. Full-width digits and separators
//!   (`４１１１－…`, what a Japanese IME types; U+FF10–FF19, U+3000, U+FF0D, U+FF0E) count
//!   like their ASCII forms, as NFKC would read them. A run touching an ASCII or full-width
//!   letter or digit (`id4111…`) is part of a word and left alone; Japanese text around it
//!   (`カード番号4111…`) is not a word boundary. Other digit runs (order numbers, phone
//!   numbers) are left alone.
//! * Security codes: 3 or 4 digits after a `cvv`, `cvv2`, `cvc`, `cvc2`, `security code`
//!   (also `security_code`, `securitycode`, `security-code`) or `セキュリティコード` key, with
//!   `=`, `:`, quotes or spaces between, are replaced by `*` whatever else they look like:
//!   a CVV must never be recorded (PCI DSS 3.3.1).

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

/// The ASCII form of a full-width ASCII character (U+FF01–FF5E) or ideographic space, as NFKC
/// gives it; other characters unchanged.
fn fold(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

fn digit(c: char) -> Option<u8> {
    let f = fold(c);
    f.is_ascii_digit().then_some(f as u8)
}

/// A letter or digit that makes a digit run part of a word (ASCII or full-width only: CJK
/// text has no spaces between words and numbers).
fn word_char(c: char) -> bool {
    fold(c).is_ascii_alphanumeric()
}

fn separator(c: char) -> bool {
    matches!(fold(c), ' ' | '-' | '.')
}

/// `text` with every Luhn-valid card number and every security-code value masked.
pub fn mask_card_data(text: &str) -> String {
    mask_security_codes(&mask_pans(text))
}

/// `text` with every Luhn-valid card number masked.
pub fn mask_pans(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let prev_word = i > 0 && word_char(chars[i - 1]);
        if digit(c).is_none() || prev_word {
            out.push(c);
            i += 1;
            continue;
        }
        // Maximal run of digits with single separators between digits.
        let start = i;
        let mut end = i;
        let mut j = i;
        while j < chars.len() {
            if digit(chars[j]).is_some() {
                end = j + 1;
                j += 1;
            } else if separator(chars[j]) && j + 1 < chars.len() && digit(chars[j + 1]).is_some() {
                j += 1;
            } else {
                break;
            }
        }
        let run = &chars[start..end];
        let digits: Vec<u8> = run.iter().filter_map(|&c| digit(c)).collect();
        let next_word = end < chars.len() && word_char(chars[end]);
        if (13..=19).contains(&digits.len()) && !next_word && luhn_valid(&digits) {
            let n = digits.len();
            let mut k = 0;
            for &ch in run {
                if digit(ch).is_some() {
                    if k < 6 || k >= n - 4 {
                        out.push(ch);
                    } else {
                        out.push('*');
                    }
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

/// Keys whose value is a card security code, compared after [`fold`] and ASCII lower-casing;
/// longer keys first so `cvv2` is not read as `cvv` followed by the digit 2.
const SECURITY_CODE_KEYS: &[&str] = &[
    "セキュリティコード",
    "security code",
    "security_code",
    "security-code",
    "securitycode",
    "cvv2",
    "cvc2",
    "cvv",
    "cvc",
];

/// Characters allowed between a key and its value, at most this many.
const MAX_KEY_GAP: usize = 4;

fn key_at(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && fold(chars[i - 1]).is_ascii_alphabetic() {
        return None;
    }
    SECURITY_CODE_KEYS.iter().find_map(|k| {
        let n = k.chars().count();
        let matches = chars.len() >= i + n
            && chars[i..i + n]
                .iter()
                .zip(k.chars())
                .all(|(&c, kc)| fold(c).to_ascii_lowercase() == kc);
        matches.then_some(n)
    })
}

/// `text` with the 3–4 digit value after each security-code key replaced by `*`.
pub fn mask_security_codes(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let Some(n) = key_at(&chars, i) else {
            out.push(chars[i]);
            i += 1;
            continue;
        };
        let mut j = i + n;
        let gap_end = (j + MAX_KEY_GAP).min(chars.len());
        while j < gap_end && matches!(fold(chars[j]), ' ' | '\t' | '=' | ':' | '"' | '\'') {
            j += 1;
        }
        let value_end = (j..chars.len())
            .find(|&k| digit(chars[k]).is_none())
            .unwrap_or(chars.len());
        let len = value_end - j;
        let after_word = value_end < chars.len() && word_char(chars[value_end]);
        out.extend(&chars[i..j]);
        if (3..=4).contains(&len) && !after_word {
            out.extend(std::iter::repeat_n('*', len));
            i = value_end;
        } else {
            i = j;
        }
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
    fn masks_full_width_digits_dot_separators_and_numbers_inside_japanese_text() {
        assert_eq!(
            mask_pans("f ４１１１１１１１１１１１１１１１ g"),
            "f ４１１１１１******１１１１ g"
        );
        assert_eq!(mask_pans("4111.1111.1111.1111"), "4111.11**.****.1111");
        assert_eq!(
            mask_pans("４１１１－１１１１－１１１１－１１１１"),
            "４１１１－１１**－****－１１１１"
        );
        assert_eq!(
            mask_pans("４１１１\u{3000}１１１１\u{3000}１１１１\u{3000}１１１１"),
            "４１１１\u{3000}１１**\u{3000}****\u{3000}１１１１"
        );
        assert_eq!(
            mask_pans("カード番号4111111111111111を確認"),
            "カード番号411111******1111を確認"
        );
        // Still part of a word when glued to full-width letters or digits.
        assert_eq!(
            mask_pans("ＩＤ４１１１１１１１１１１１１１１１"),
            "ＩＤ４１１１１１１１１１１１１１１１"
        );
    }

    #[test]
    fn masks_security_code_values() {
        assert_eq!(
            mask_card_data("c cc=4111111111111111&cvv=123"),
            "c cc=411111******1111&cvv=***"
        );
        assert_eq!(mask_card_data("CVV: 1234 ok"), "CVV: **** ok");
        assert_eq!(mask_card_data("cvc2 = 999"), "cvc2 = ***");
        assert_eq!(mask_card_data("{\"cvv\":\"123\"}"), "{\"cvv\":\"***\"}");
        assert_eq!(mask_card_data("security code 321"), "security code ***");
        assert_eq!(mask_card_data("Security_Code=321"), "Security_Code=***");
        assert_eq!(
            mask_card_data("セキュリティコード：１２３"),
            "セキュリティコード：***"
        );
        assert_eq!(mask_card_data("ＣＶＶ＝１２３"), "ＣＶＶ＝***");
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
        assert_eq!(
            mask_pans("from 192.0.2.10 at 10.30"),
            "from 192.0.2.10 at 10.30"
        );
        // Not a security-code value: other keys, other lengths, no value.
        assert_eq!(
            mask_card_data("order=123 cvv check failed 3 times; cvv=12345; xcvv=123"),
            "order=123 cvv check failed 3 times; cvv=12345; xcvv=123"
        );
    }
}
