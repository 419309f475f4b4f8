//! Conditions on case variables (`when = "card_data_exposed and not pfi_required"`).
//!
//! Grammar: `expr := and ("or" and)*`, `and := unary ("and" unary)*`,
//! `unary := "not" unary | "(" expr ")" | NAME [op VALUE]`, with `op` one of
//! `= == != > >= < <=`. A bare NAME is true when the variable is `true`/`yes`/`1`.
//! Evaluation is three-valued: a variable not yet set is *unknown*, so a step whose condition
//! is still undecided is shown (conservatively) rather than hidden.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Var(String),
    Cmp(String, Op, String),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// Kleene truth value.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
    fn and(self, o: Truth) -> Truth {
        match (self, o) {
            (Truth::False, _) | (_, Truth::False) => Truth::False,
            (Truth::True, Truth::True) => Truth::True,
            _ => Truth::Unknown,
        }
    }
    fn or(self, o: Truth) -> Truth {
        match (self, o) {
            (Truth::True, _) | (_, Truth::True) => Truth::True,
            (Truth::False, Truth::False) => Truth::False,
            _ => Truth::Unknown,
        }
    }
}

#[derive(Debug, PartialEq, Clone)]
enum Tok {
    Word(String),
    Str(String),
    Op(Op),
    LParen,
    RParen,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c == '\'' || c == '"' {
            let end = cs[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or("unterminated string")?;
            out.push(Tok::Str(cs[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if "=!<>".contains(c) {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            let (op, n) = match two.as_str() {
                "==" => (Op::Eq, 2),
                "!=" => (Op::Ne, 2),
                ">=" => (Op::Ge, 2),
                "<=" => (Op::Le, 2),
                _ => match c {
                    '=' => (Op::Eq, 1),
                    '>' => (Op::Gt, 1),
                    '<' => (Op::Lt, 1),
                    _ => return Err("`!` must be followed by `=` (use `not`)".into()),
                },
            };
            out.push(Tok::Op(op));
            i += n;
        } else if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' || c == ':' {
            let start = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || "_-.:+".contains(cs[i])) {
                i += 1;
            }
            out.push(Tok::Word(cs[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn kw(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w == k)
    }
    fn expr(&mut self) -> Result<Cond, String> {
        let mut l = self.and()?;
        while self.kw("or") {
            self.pos += 1;
            let r = self.and()?;
            l = Cond::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Cond, String> {
        let mut l = self.unary()?;
        while self.kw("and") {
            self.pos += 1;
            let r = self.unary()?;
            l = Cond::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Cond, String> {
        if self.kw("not") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.unary()?)));
        }
        match self.peek().cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.expr()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err("missing `)`".into());
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Word(w)) if !["and", "or", "not"].contains(&w.as_str()) => {
                if !w
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    || !w.starts_with(|c: char| c.is_ascii_lowercase())
                {
                    return Err(format!("`{w}` is not a variable name"));
                }
                self.pos += 1;
                if let Some(Tok::Op(op)) = self.peek().cloned() {
                    self.pos += 1;
                    match self.peek().cloned() {
                        Some(Tok::Word(v)) | Some(Tok::Str(v)) => {
                            self.pos += 1;
                            Ok(Cond::Cmp(w, op, v))
                        }
                        _ => Err(format!("missing value after `{w}` comparison")),
                    }
                } else {
                    Ok(Cond::Var(w))
                }
            }
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("unexpected end of condition".into()),
        }
    }
}

/// Whether a variable value reads as true.
pub fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "y" | "1" | "on"
    )
}

impl Cond {
    pub fn parse(s: &str) -> Result<Cond, String> {
        let toks = lex(s)?;
        let mut p = Parser { toks, pos: 0 };
        let c = p.expr()?;
        if p.pos != p.toks.len() {
            return Err(format!("unexpected {:?}", p.toks[p.pos]));
        }
        Ok(c)
    }

    /// Every variable the condition reads.
    pub fn variables(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect(&self, out: &mut Vec<String>) {
        match self {
            Cond::Var(v) | Cond::Cmp(v, _, _) => out.push(v.clone()),
            Cond::Not(c) => c.collect(out),
            Cond::And(a, b) | Cond::Or(a, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }

    pub fn eval(&self, vars: &BTreeMap<String, String>) -> Truth {
        match self {
            Cond::Var(v) => match vars.get(v) {
                None => Truth::Unknown,
                Some(x) => {
                    if truthy(x) {
                        Truth::True
                    } else {
                        Truth::False
                    }
                }
            },
            Cond::Cmp(v, op, want) => match vars.get(v) {
                None => Truth::Unknown,
                Some(have) => {
                    let ord = match (have.trim().parse::<f64>(), want.parse::<f64>()) {
                        (Ok(a), Ok(b)) => a.partial_cmp(&b),
                        _ => Some(have.trim().cmp(want.as_str())),
                    };
                    let Some(ord) = ord else { return Truth::False };
                    use std::cmp::Ordering::*;
                    let r = match op {
                        Op::Eq => ord == Equal,
                        Op::Ne => ord != Equal,
                        Op::Gt => ord == Greater,
                        Op::Ge => ord != Less,
                        Op::Lt => ord == Less,
                        Op::Le => ord != Greater,
                    };
                    if r {
                        Truth::True
                    } else {
                        Truth::False
                    }
                }
            },
            Cond::Not(c) => c.eval(vars).not(),
            Cond::And(a, b) => a.eval(vars).and(b.eval(vars)),
            Cond::Or(a, b) => a.eval(vars).or(b.eval(vars)),
        }
    }
}

/// Evaluates an optional condition string (absent = true; unparsable = unknown).
pub fn eval_opt(when: Option<&str>, vars: &BTreeMap<String, String>) -> Truth {
    match when {
        None => Truth::True,
        Some(s) => Cond::parse(s)
            .map(|c| c.eval(vars))
            .unwrap_or(Truth::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn three_valued() {
        let c = Cond::parse("card_data_exposed or personal_data_exposed").unwrap();
        assert_eq!(c.eval(&vars(&[])), Truth::Unknown);
        assert_eq!(
            c.eval(&vars(&[("card_data_exposed", "false")])),
            Truth::Unknown
        );
        assert_eq!(
            c.eval(&vars(&[
                ("card_data_exposed", "false"),
                ("personal_data_exposed", "no")
            ])),
            Truth::False
        );
        assert_eq!(
            c.eval(&vars(&[("personal_data_exposed", "yes")])),
            Truth::True
        );
        let c = Cond::parse("not (a and b) and n > 1000").unwrap();
        assert_eq!(
            c.eval(&vars(&[("a", "true"), ("b", "false"), ("n", "1001")])),
            Truth::True
        );
        assert_eq!(
            c.eval(&vars(&[("a", "true"), ("b", "false"), ("n", "999")])),
            Truth::False
        );
        assert_eq!(c.variables(), vec!["a", "b", "n"]);
        let c = Cond::parse("payment_type = 'own-form'").unwrap();
        assert_eq!(c.eval(&vars(&[("payment_type", "own-form")])), Truth::True);
        assert!(Cond::parse("a and").is_err());
        assert!(Cond::parse("A").is_err());
        assert!(Cond::parse("(a").is_err());
    }
}
