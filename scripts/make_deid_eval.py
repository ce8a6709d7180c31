#!/usr/bin/env python3
"""Writes the labelled de-identification evaluation set (tests/fixtures/deid/eval.jsonl).

Each line: {"id": N, "lang": "en"|"zh", "text": ..., "spans": [[begin, end, type], ...]} with
code-point offsets; types are ohm's (email, phone, cn_id, ssn, card, iban, ip, url, dob, person,
address). Sentences are built from templates with values drawn by a seeded generator: valid
values (checksums, dates, lengths) for the PII, and negatives that look like PII but are not
(bad checksums, order and tracking numbers, versions like 1.2.3.4, times, dates that are not
birth dates, SSNs in never-issued areas). Names come from lists of this script's own, wider than
ohm's gazetteers, so the name figures are not a test of the gazetteers against themselves.

Conventions the labels follow (docs/deid.md): a person's span leaves out titles (Dr., 先生); a
date of birth's span is the date only; an address's span runs from the house number (English,
with unit and ", City, ST 12345" when present) or the first place name (Chinese) to the last
unit (号, 室 ...); a phone's span includes '+' and parentheses.

Usage: make_deid_eval.py [--out FILE] [--seed N] [--sentences N] [--bench-rows N]
(--bench-rows writes only text rows without labels, for bench/deid_bench.sh.)
"""
import argparse
import json
import random

EN_GIVEN = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Susan "
            "Thomas Sarah Karen Daniel Nancy Emily Olivia Ethan Noah Sophia Liam Ava Lucas Chloe "
            "Grace Henry Oscar Ingrid Mateo Aisha Kenji Priya Dmitri Fatima Hugo Leila Tobias Nora "
            "Rafael Yara Felix Maeve Arjun Sienna Caleb Imogen").split()
EN_SURNAMES = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Martinez Wilson Anderson "
               "Taylor Moore Jackson Martin Lee Thompson White Harris Clark Lewis Walker Young "
               "Allen King Wright Scott Hill Green Adams Baker Nelson Carter Mitchell Roberts "
               "Okafor Lindqvist Nakamura Kowalski Petrov Haddad Fitzgerald Delacroix Brennan "
               "Whitfield Castellano Abernathy").split()
TITLES = ["Dr.", "Mr.", "Mrs.", "Ms.", "Prof."]
PINYIN = [("Wang", "Fang"), ("Li", "Na"), ("Zhang", "Wei"), ("Liu", "Yang"), ("Chen", "Jie"),
          ("Zhao", "Lei"), ("Huang", "Min")]
ZH_SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈") + ["欧阳", "诸葛", "司马"]
ZH_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚华慧兰梅宁欣宇怡浩博鹏建国志晨曦雨婷子涵思远嘉")
ZH_TITLES = ["先生", "女士", "经理", "老师", "医生", "教授"]
ZH_CONTEXT = ["姓名：", "我叫", "联系人：", "患者", "收件人：", "客户"]
STREETS = ["Main", "Oak", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Pine",
           "Sunset", "Highland", "Riverside", "Willow", "Chestnut", "Lincoln"]
SUFFIXES = ["Street", "St", "Avenue", "Ave", "Road", "Rd", "Boulevard", "Lane", "Drive", "Court",
            "Way", "Place"]
CITIES = [("Springfield", "IL"), ("Austin", "TX"), ("Portland", "OR"), ("Boston", "MA"),
          ("Denver", "CO"), ("San Jose", "CA"), ("Madison", "WI")]
ZH_PLACES = ["北京市朝阳区", "上海市浦东新区", "广州市天河区", "深圳市南山区", "杭州市西湖区",
             "成都市武侯区", "南京市鼓楼区", "武汉市洪山区", "浙江省宁波市鄞州区", "江苏省苏州市工业园区"]
ZH_ROADS = ["建国路", "世纪大道", "天河路", "科技园路", "文三路", "人民南路", "中山北路", "珞喻路",
            "解放东路", "星湖街", "南京西路", "长安街"]
DOMAINS = ["gmail.com", "example.org", "mail.ohm.dev", "163.com", "qq.com", "company.co.uk",
           "uni-heidelberg.de", "outlook.com"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
CN_REGIONS = ["110105", "310115", "440106", "440305", "330106", "510107", "320106", "420111",
              "610113", "370102"]
IBAN_LEN = {"DE": 22, "GB": 22, "FR": 27, "NL": 18, "ES": 24, "IT": 27, "CH": 21, "BE": 16,
            "AT": 20, "PL": 28, "SE": 24, "NO": 15, "DK": 18, "IE": 22, "PT": 25, "FI": 18}
IBAN_LETTERS = {"GB": 4, "NL": 4, "IE": 4, "IT": 1}  # letters that start the BBAN


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def digits(self, n, first="0123456789"):
        return self.r.choice(first) + "".join(self.r.choice("0123456789") for _ in range(n - 1))

    # ---- valid values --------------------------------------------------------------------
    def email(self):
        g, s = self.r.choice(EN_GIVEN).lower(), self.r.choice(EN_SURNAMES).lower()
        local = self.r.choice([f"{g}.{s}", f"{g[0]}{s}", f"{g}_{s}{self.r.randint(1, 99)}",
                               f"{g}+news", f"{s}{self.r.randint(1970, 2005)}"])
        return f"{local}@{self.r.choice(DOMAINS)}"

    def cn_mobile(self):
        return "1" + self.r.choice("3456789") + self.digits(9)

    def phone(self, lang):
        k = self.r.randrange(12)
        m = self.cn_mobile()
        if k == 0: return m
        if k == 1: return f"{m[:3]} {m[3:7]} {m[7:]}"
        if k == 2: return f"{m[:3]}-{m[3:7]}-{m[7:]}"
        if k == 3: return f"+86 {m[:3]} {m[3:7]} {m[7:]}"
        if k == 4: return f"+86{m}"
        if k == 5:
            area = self.r.choice(["010", "021", "020", "0755", "0571", "028"])
            local = self.digits(8 if len(area) == 3 else self.r.choice([7, 8]), "2345678")
            return self.r.choice([f"{area}-{local}", f"({area}) {local[:4]} {local[4:]}",
                                  f"{area} {local}"])
        if k == 6:
            return f"+86 10 {self.digits(4, '2345678')} {self.digits(4)}"
        if k == 7: return f"+44 20 {self.digits(4, '2345678')} {self.digits(4)}"
        if k == 8: return f"+49 30 {self.digits(8, '2345678')}"
        if k == 9: return f"+1 {self.digits(3, '23456789')} 555 {self.digits(4)}"
        if k == 10: return f"({self.digits(3, '23456789')}) 555-{self.digits(4)}"
        return f"+33 1 {self.digits(2)} {self.digits(2)} {self.digits(2)} {self.digits(2)}"

    @staticmethod
    def cn_check(d17):
        w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        return "10X98765432"[sum(int(a) * b for a, b in zip(d17, w)) % 11]

    def birth(self):
        return (self.r.randint(1940, 2006), self.r.randint(1, 12), self.r.randint(1, 28))

    def cn_id(self):
        y, m, d = self.birth()
        d17 = f"{self.r.choice(CN_REGIONS)}{y:04d}{m:02d}{d:02d}{self.r.randint(0, 999):03d}"
        return d17 + self.cn_check(d17)

    def ssn(self):
        while True:
            a = self.r.randint(1, 899)
            if a != 666: break
        return f"{a:03d}-{self.r.randint(1, 99):02d}-{self.r.randint(1, 9999):04d}"

    @staticmethod
    def luhn_digit(body):
        s = 0
        for i, ch in enumerate(reversed(body)):
            v = int(ch)
            if i % 2 == 0:
                v *= 2
                if v > 9: v -= 9
            s += v
        return str((10 - s % 10) % 10)

    def card_digits(self):
        prefix, n = self.r.choice([("4", 16), ("4", 16), ("51", 16), ("55", 16), ("2221", 16),
                                   ("34", 15), ("37", 15), ("6011", 16), ("62", 16), ("62", 19),
                                   ("3530", 16), ("36", 14)])
        body = prefix + self.digits(n - len(prefix) - 1)
        return body + self.luhn_digit(body)

    def fmt_card(self, d):
        if len(d) == 15: groups = [d[:4], d[4:10], d[10:]]
        elif len(d) == 14: groups = [d[:4], d[4:10], d[10:]]
        else: groups = [d[i:i + 4] for i in range(0, len(d), 4)]
        return self.r.choice([" ", "-", ""]).join(groups)

    def card(self):
        return self.fmt_card(self.card_digits())

    @staticmethod
    def iban_check(cc, bban):
        s = bban + cc + "00"
        n = int("".join(str(int(ch, 36)) for ch in s))
        return f"{98 - n % 97:02d}"

    def iban(self, valid=True):
        cc = self.r.choice(sorted(IBAN_LEN))
        nl = IBAN_LETTERS.get(cc, 0)
        bban = "".join(self.r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(nl))
        bban += self.digits(IBAN_LEN[cc] - 4 - nl)
        chk = self.iban_check(cc, bban)
        if not valid:
            chk = f"{(int(chk) + self.r.randint(1, 90)) % 100:02d}"
        s = cc + chk + bban
        if self.r.random() < 0.5:
            s = " ".join(s[i:i + 4] for i in range(0, len(s), 4))
        return s

    def ip(self):
        k = self.r.randrange(8)
        if k < 4:
            return ".".join(str(self.r.randint(1 if i == 0 else 0, 254)) for i in range(4))
        h = lambda: f"{self.r.randint(0, 0xffff):x}"
        if k == 4: return ":".join(h() for _ in range(8))
        if k == 5: return f"2001:db8::{h()}:{h()}"
        if k == 6: return f"fe80::{h()}:{h()}:{h()}:{h()}"
        return self.r.choice(["::1", f"::ffff:192.0.2.{self.r.randint(1, 254)}", f"2001:db8:{h()}::1"])

    def url(self):
        host = self.r.choice(["www.example.com", "docs.ohm.dev", "shop.example.org", "github.com",
                              "news.example.co.uk", "www.baidu.com"])
        path = self.r.choice(["", "/", "/user/profile?id=42", "/a/b/c.html", "/search?q=ohm&lang=en",
                              "/wiki/Main_Page"])
        sch = self.r.choice(["https://", "http://", "https://", ""])
        if sch == "" and not host.startswith("www."): sch = "https://"
        return sch + host + path

    def dob_value(self, lang):
        y, m, d = self.birth()
        if lang == "zh":
            return self.r.choice([f"{y}年{m}月{d}日", f"{y}-{m:02d}-{d:02d}", f"{y}/{m}/{d}"])
        return self.r.choice([f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{d:02d}/{y}", f"{MONTHS[m-1]} {d}, {y}",
                              f"{d} {MONTHS[m-1]} {y}", f"{d:02d}.{m:02d}.{y}"])

    def en_name(self):
        return f"{self.r.choice(EN_GIVEN)} {self.r.choice(EN_SURNAMES)}"

    def zh_name(self):
        return self.r.choice(ZH_SURNAMES) + "".join(self.r.choice(ZH_GIVEN) for _ in range(self.r.choice([1, 2, 2])))

    def en_address(self):
        a = f"{self.r.randint(1, 9999)} {self.r.choice(STREETS)} {self.r.choice(SUFFIXES)}"
        if self.r.random() < 0.3: a += self.r.choice([", Apt 4B", " Suite 210", ", Unit 7"])
        if self.r.random() < 0.5:
            c, st = self.r.choice(CITIES)
            a += f", {c}, {st} {self.digits(5, '123456789')}"
        return a

    def zh_address(self):
        a = self.r.choice(ZH_PLACES) + self.r.choice(ZH_ROADS) + f"{self.r.randint(1, 999)}号"
        if self.r.random() < 0.4:
            a += self.r.choice([f"{self.r.randint(1, 20)}栋{self.r.randint(1, 6)}单元{self.r.randint(101, 2505)}室",
                                f"{self.r.randint(101, 2505)}室", f"{self.r.randint(2, 30)}楼"])
        return a

    # ---- negatives: look like PII, are not ------------------------------------------------
    def negative(self, lang):
        k = self.r.randrange(14)
        if k == 0:
            d = self.cn_id()
            bad = d[:17] + self.r.choice([c for c in "0123456789X" if c != d[17]])
            return f"ticket {bad}" if lang == "en" else f"工单{bad}"
        if k == 1:
            d = self.card_digits()
            bad = d[:-1] + str((int(d[-1]) + self.r.randint(1, 9)) % 10)
            return f"order no. {bad}" if lang == "en" else f"订单号 {bad}"
        if k == 2: return f"IBAN {self.iban(valid=False)}"
        if k == 3:
            v = ".".join(str(self.r.randint(0, 20)) for _ in range(4))
            return f"version {v}" if lang == "en" else f"版本 {v}"
        if k == 4: return f"Order #{self.r.randint(2019, 2026)}-{self.digits(4)}-{self.digits(4)}"
        if k == 5: return f"SSN {self.r.choice(['000', '666', '912'])}-{self.r.randint(10, 99)}-{self.digits(4)}"
        if k == 6: return f"at {self.r.randint(0, 23):02d}:{self.r.randint(0, 59):02d}:{self.r.randint(0, 59):02d}"
        if k == 7:
            return (f"the meeting on {self.r.randint(2020, 2026)}-{self.r.randint(1, 12):02d}-{self.r.randint(1, 28):02d}"
                    if lang == "en" else f"会议在{self.r.randint(2020, 2026)}年{self.r.randint(1, 12)}月{self.r.randint(1, 28)}日")
        if k == 8: return f"tracking {self.r.choice(['1Z', 'SF'])}{self.digits(12)}"
        if k == 9: return f"build {self.r.randint(1, 9)}.{self.r.randint(0, 30)}.{self.r.randint(0, 300)}.{self.r.randint(0, 9999)}"
        if k == 10: return f"room {self.r.randint(100, 999)}, extension {self.digits(4)}"
        if k == 11: return f"invoice {self.digits(10, '123456789')}"
        if k == 12: return f"user@localhost"
        return f"{self.r.randint(300, 999)}.{self.r.randint(0, 9)}.{self.r.randint(0, 9)}.{self.r.randint(0, 9)}"


EN_TEMPLATES = [
    "Please email {email} before Friday.",
    "You can reach {person} at {phone}.",
    "{title} {person_t} will see you now.",
    "My SSN is {ssn} and my card is {card}.",
    "Wire the money to {iban}, reference {neg}.",
    "The server at {ip} rejected the login; see {url}.",
    "Patient {person}, DOB: {dob}, phone {phone}.",
    "She was born on {dob} and lives at {address}.",
    "Ship to {address}. Contact: {email}.",
    "Card number {card} was declined ({neg}).",
    "Logged in from {ip} and {ip2} with {neg}.",
    "Dear {given}, your account {neg} is ready.",
    "Date of birth {dob}; social security number {ssn}.",
    "Call {phone} or write to {email}; {neg}.",
    "{person} ({email}) moved to {address}.",
    "Visit {url} for details, {neg}.",
    "Transfer from {iban} to {iban2} approved.",
    "The ID on file is {cn_id}.",
    "Contact {pinyin} on {phone}.",
    "Nothing to see here: {neg} and {neg2}.",
    # written without the cues ohm's name and address rules look for (a test of their limits)
    "Yesterday {person} and {given} walked home.",
    "According to {person}, the budget is fine.",
    "{given} said the invoice was paid.",
    "We met at {uk_address} last week.",
    "Mark the Jordan River trip on the calendar; Grace period ends {neg}.",
    "The Washington Post and Lake Victoria tours by Apple Park staff.",
    "Meet me at {street_only} after lunch.",
]
ZH_TEMPLATES = [
    "{ctx}{zname}，电话{phone}。",
    "{zname}{ztitle}的手机号是{phone}，邮箱{email}。",
    "身份证号码{cn_id}，出生日期：{dob}。",
    "我住在{zaddress}，有事请打{phone}。",
    "收货地址：{zaddress}，收件人：{zname}。",
    "他的银行卡号是{card}，{neg}。",
    "请把合同发到{email}，{neg}。",
    "服务器{ip}无法访问，详见{url}。",
    "{ctx}{zname}，身份证{cn_id}，住址：{zaddress}。",
    "生日：{dob}，联系方式{phone}。",
    "汇款账户{iban}，{neg}。",
    "公司位于{zaddress}，电话{phone}。",
    "{neg}，{neg2}，没有个人信息。",
    "客户{zname}的IP是{ip}。",
    "{zname}今天没来上班，{neg}。",
    "这件事{zname}已经知道了。",
    "新办公室在{zaddress_nohao}附近。",
    "黄山和长江都很美，张家界也不错。",
]


def build(g, template, lang):
    """Fills a template; returns (text, spans) with code-point offsets."""
    out, spans = "", []
    i = 0
    while i < len(template):
        if template[i] != "{":
            out += template[i]
            i += 1
            continue
        j = template.index("}", i)
        key = template[i + 1:j]
        i = j + 1
        typ, val = None, None
        if key in ("email",): typ, val = "email", g.email()
        elif key == "phone": typ, val = "phone", g.phone(lang)
        elif key == "cn_id": typ, val = "cn_id", g.cn_id()
        elif key == "ssn": typ, val = "ssn", g.ssn()
        elif key == "card": typ, val = "card", g.card()
        elif key in ("iban", "iban2"): typ, val = "iban", g.iban()
        elif key in ("ip", "ip2"): typ, val = "ip", g.ip()
        elif key == "url": typ, val = "url", g.url()
        elif key == "dob": typ, val = "dob", g.dob_value(lang)
        elif key in ("person", "person_t"): typ, val = "person", g.en_name()
        elif key == "given": typ, val = "person", g.r.choice(EN_GIVEN)
        elif key == "pinyin": typ, val = "person", " ".join(g.r.choice(PINYIN))
        elif key == "title": val = g.r.choice(TITLES)
        elif key == "address": typ, val = "address", g.en_address()
        elif key == "zname": typ, val = "person", g.zh_name()
        elif key == "ztitle": val = g.r.choice(ZH_TITLES)
        elif key == "ctx": val = g.r.choice(ZH_CONTEXT)
        elif key == "zaddress": typ, val = "address", g.zh_address()
        elif key == "zaddress_nohao": typ, val = "address", g.r.choice(ZH_PLACES) + g.r.choice(ZH_ROADS)
        elif key == "uk_address":
            typ, val = "address", (f"{g.r.randint(1, 200)} {g.r.choice(STREETS)} {g.r.choice(['Street', 'Road'])}, "
                                   f"London {g.r.choice(['NW1 6XE', 'SW1A 2AA', 'EC1A 1BB'])}")
        elif key == "street_only":
            typ, val = "address", f"{g.r.randint(1, 999)} {g.r.choice(STREETS)} {g.r.choice(SUFFIXES)}"
        elif key in ("neg", "neg2"): val = g.negative(lang)
        else: raise KeyError(key)
        if typ: spans.append([len(out), len(out) + len(val), typ])
        out += val
    return out, spans


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/deid/eval.jsonl")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--sentences", type=int, default=420)
    ap.add_argument("--bench-rows", type=int, default=0)
    a = ap.parse_args()
    g = Gen(a.seed)
    rows = []
    n = a.bench_rows or a.sentences
    for k in range(n):
        lang = "zh" if k % 3 == 2 else "en"
        t = g.r.choice(ZH_TEMPLATES if lang == "zh" else EN_TEMPLATES)
        text, spans = build(g, t, lang)
        rows.append({"id": k, "lang": lang, "text": text, "spans": spans})
    with open(a.out, "w", encoding="utf-8") as f:
        for r in rows:
            if a.bench_rows:
                r = {"id": r["id"], "text": r["text"]}
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    if not a.bench_rows:
        from collections import Counter
        c = Counter(s[2] for r in rows for s in r["spans"])
        print(f"{a.out}: {len(rows)} sentences, {sum(c.values())} PII instances: "
              + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))


if __name__ == "__main__":
    main()
