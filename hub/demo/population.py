"""A deterministic, synthetic population for the demo ecosystem and the tests.

``generate_population(seed, consumers)`` builds consumers, their vehicles and every contract around
them (sales deal, loan application, decision, loan account with lien, insurance policy, telematics
summaries, claims, service history) from ``random.Random(seed)`` alone: no data files, no network,
no clock. The same arguments always give an identical :class:`Population`.

Decisions (documented here because tests and seeders rely on them):

* Time is frozen: every date lies on or before :data:`AS_OF` (2026-11-01).
* About 88 % of consumers have Han names, live in mainland China (``jurisdiction="CN"``) and hold a
  PRC resident identity number (``id_type="prc_id"``) whose region code is the district of their
  address and whose birth date and sex digit match the consumer.
* The others have Latin-script names and are foreigners holding a passport (``id_type="passport"``,
  ``nationality`` GB, DE or US; no PRC ID, since foreigners do not get one). About half of them live
  in China (jurisdiction CN, Chinese address); the rest live in Germany or the UK (jurisdiction
  DE/GB, a local address), so cross-border rules have subjects to act on. Their cars were bought
  and registered in China (``Vehicle.registered_province``).
* Every consumer has a mainland mobile number in E.164 form (``+86`` and 11 digits), also those
  living abroad (they keep the number they bought the car with), so the mobile always passes
  :func:`~hub.deid.identifiers.is_valid_cn_mobile` and can identify the subject at publish time.
* Every VIN carries a valid ISO 3779 check digit (also for European makers, where it is optional),
  a real WMI of its maker, the model-year code in position 10 and a numeric serial.
* Plates belong to the province (and a real issuing-authority letter of the city) where the vehicle
  is registered; battery-electric cars get new-energy ``D`` plates, plug-in hybrids ``F`` plates.
* Claims and service remarks are free text in English or Chinese; some mention the plate, the VIN,
  the consumer's phone number, a third party's plate, or look-alikes (order and part numbers). Each
  text lists what was planted in ``planted`` as ``(entity_type, value)`` pairs, using the egress
  guard's entity names (``CN_PLATE``, ``VIN``, ``CN_MOBILE``, ``PRC_ID``).
* Everything in here is synthetic. Any resemblance of a generated name, number or plate to a real
  one is chance.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

from hub.deid.identifiers import (
    iban_check_digits,
    luhn_check_digit,
    prc_id_check_char,
    vin_check_digit,
)

__all__ = [
    "AS_OF",
    "Consumer",
    "InsuranceClaim",
    "InsurancePolicy",
    "Lien",
    "LoanAccount",
    "LoanApplication",
    "LoanDecision",
    "Partner",
    "Population",
    "SalesDeal",
    "ServiceRecord",
    "TelematicsSummary",
    "Vehicle",
    "generate_population",
]

AS_OF: Final = date(2026, 11, 1)
"""The frozen "today" of the demo world: no generated date lies after it."""

Gender = Literal["F", "M"]
NameScript = Literal["han", "latin"]
Jurisdiction = Literal["CN", "DE", "GB"]
IdType = Literal["prc_id", "passport"]
PartnerRole = Literal["oem", "dealer", "lender", "insurer", "regulator"]
Planted = tuple[tuple[str, str], ...]


# ------------------------------------------------------------------------------------ dataclasses


@dataclass(frozen=True, slots=True)
class Partner:
    ref: str
    name: str
    role: PartnerRole
    jurisdiction: str


@dataclass(frozen=True, slots=True)
class Consumer:
    subject_ref: str
    full_name: str
    name_script: NameScript
    gender: Gender
    birth_date: date
    nationality: str
    id_type: IdType
    id_number: str
    mobile: str
    email: str
    address: str
    city: str
    province: str
    jurisdiction: Jurisdiction
    monthly_income_cny: int


@dataclass(frozen=True, slots=True)
class Vehicle:
    vin: str
    subject_ref: str
    make: str
    model: str
    powertrain: Literal["ice", "phev", "bev"]
    model_year: int
    build_date: date
    msrp_cny: int
    plate: str
    registered_province: str
    registered_city: str


@dataclass(frozen=True, slots=True)
class SalesDeal:
    deal_id: str
    dealer_ref: str
    subject_ref: str
    vin: str
    deal_date: date
    price_cny: int
    trade_in_value_cny: int | None
    notes: str
    planted: Planted


@dataclass(frozen=True, slots=True)
class LoanApplication:
    application_id: str
    dealer_ref: str
    lender_ref: str
    subject_ref: str
    vin: str
    applied_on: date
    amount_cny: int
    term_months: int
    down_payment_cny: int
    monthly_income_cny: int


@dataclass(frozen=True, slots=True)
class LoanDecision:
    decision_id: str
    application_id: str
    lender_ref: str
    subject_ref: str
    decided_on: date
    outcome: Literal["approved", "declined"]
    rate_band: str | None
    approved_amount_cny: int | None
    reason_code: str


@dataclass(frozen=True, slots=True)
class Lien:
    lien_id: str
    registered_on: date
    authority: str
    status: Literal["registered", "released"]


@dataclass(frozen=True, slots=True)
class LoanAccount:
    account_id: str
    lender_ref: str
    subject_ref: str
    application_id: str
    vin: str
    opened_on: date
    principal_cny: int
    term_months: int
    balance_band: str
    delinquency: Literal["current", "dpd_1_30", "dpd_31_60", "dpd_61_90", "dpd_90_plus"]
    repayment_card: str
    lien: Lien


@dataclass(frozen=True, slots=True)
class InsurancePolicy:
    policy_id: str
    insurer_ref: str
    subject_ref: str
    vin: str
    plate: str
    coverage: Literal["compulsory", "third_party", "comprehensive"]
    premium_band: str
    annual_premium_cny: int
    start_date: date
    end_date: date
    payout_iban: str | None


@dataclass(frozen=True, slots=True)
class TelematicsSummary:
    summary_id: str
    vin: str
    subject_ref: str
    period: str
    odometer_km: int
    trips: int
    distance_km: int
    night_driving_share: float
    harsh_braking_score: int
    last_lat: float
    last_lon: float


@dataclass(frozen=True, slots=True)
class InsuranceClaim:
    claim_id: str
    policy_id: str
    insurer_ref: str
    subject_ref: str
    vin: str
    incident_date: date
    amount_cny: int
    status: Literal["open", "settled", "rejected"]
    language: Literal["en", "zh"]
    description: str
    planted: Planted


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    service_id: str
    dealer_ref: str
    vin: str
    subject_ref: str
    service_date: date
    odometer_km: int
    service_type: str
    cost_cny: int
    language: Literal["en", "zh"]
    remarks: str
    planted: Planted


@dataclass(frozen=True, slots=True)
class Population:
    seed: int
    as_of: date
    partners: tuple[Partner, ...]
    consumers: tuple[Consumer, ...]
    vehicles: tuple[Vehicle, ...]
    sales_deals: tuple[SalesDeal, ...]
    loan_applications: tuple[LoanApplication, ...]
    loan_decisions: tuple[LoanDecision, ...]
    loan_accounts: tuple[LoanAccount, ...]
    insurance_policies: tuple[InsurancePolicy, ...]
    telematics: tuple[TelematicsSummary, ...]
    claims: tuple[InsuranceClaim, ...]
    service_records: tuple[ServiceRecord, ...]

    def vehicle_of(self, subject_ref: str) -> Vehicle:
        """The vehicle owned by ``subject_ref`` (every consumer owns exactly one)."""
        for v in self.vehicles:
            if v.subject_ref == subject_ref:
                return v
        raise KeyError(subject_ref)


PARTNERS: Final = (
    Partner("oem-zhiyuan", "Zhiyuan Motor Co.", "oem", "CN"),
    Partner("dealer-huadong", "Huadong Auto Mall", "dealer", "CN"),
    Partner("dealer-nanfang", "Nanfang Motors Dealer Group", "dealer", "CN"),
    Partner("lender-jinqiao", "Jinqiao Auto Finance", "lender", "CN"),
    Partner("lender-pearl", "Pearl River Commercial Bank", "lender", "CN"),
    Partner("insurer-anxin", "Anxin Property & Casualty", "insurer", "CN"),
    Partner("regulator-fsr", "Financial Supervisory Regulator (demo)", "regulator", "CN"),
)

# -------------------------------------------------------------------------------- reference data


@dataclass(frozen=True, slots=True)
class _City:
    province: str  # short name, e.g. 广东
    province_full: str  # 广东省 / 北京市
    city: str  # 广州市
    districts: tuple[tuple[str, str], ...]  # (name, 6-digit region code)
    plate_prefixes: tuple[str, ...]  # e.g. 粤A
    lat: float
    lon: float
    weight: int


def _c(
    province: str,
    province_full: str,
    city: str,
    districts: str,
    plates: str,
    lat: float,
    lon: float,
    weight: int,
) -> _City:
    ds = tuple(
        (d.split(":")[0], d.split(":")[1]) for d in districts.split(",")
    )  # "朝阳区:110105,..."
    return _City(province, province_full, city, ds, tuple(plates.split(",")), lat, lon, weight)


_CITIES: Final = (
    _c(
        "北京",
        "北京市",
        "北京市",
        "朝阳区:110105,海淀区:110108,东城区:110101,西城区:110102,丰台区:110106",
        "京A,京B,京C,京E,京F,京G,京H,京J,京K,京L,京M,京N,京P,京Q",
        39.904,
        116.407,
        12,
    ),
    _c(
        "上海",
        "上海市",
        "上海市",
        "浦东新区:310115,徐汇区:310104,静安区:310106,闵行区:310112,杨浦区:310110",
        "沪A,沪B,沪C,沪D,沪E,沪F,沪G,沪H,沪J,沪K,沪L,沪M,沪N",
        31.230,
        121.474,
        12,
    ),
    _c(
        "天津",
        "天津市",
        "天津市",
        "和平区:120101,南开区:120104,河西区:120103",
        "津A,津B,津C,津D,津E,津F,津G,津H",
        39.125,
        117.190,
        4,
    ),
    _c(
        "重庆",
        "重庆市",
        "重庆市",
        "渝中区:500103,江北区:500105,南岸区:500108",
        "渝A,渝B,渝C,渝D,渝F,渝G,渝H",
        29.563,
        106.551,
        5,
    ),
    _c(
        "广东",
        "广东省",
        "广州市",
        "天河区:440106,越秀区:440104,海珠区:440105,番禺区:440113",
        "粤A",
        23.129,
        113.264,
        8,
    ),
    _c(
        "广东",
        "广东省",
        "深圳市",
        "福田区:440304,南山区:440305,罗湖区:440303,宝安区:440306",
        "粤B",
        22.543,
        114.058,
        9,
    ),
    _c(
        "广东",
        "广东省",
        "佛山市",
        "禅城区:440604,南海区:440605,顺德区:440606",
        "粤E",
        23.022,
        113.122,
        3,
    ),
    _c("广东", "广东省", "东莞市", "东莞市:441900", "粤S", 23.021, 113.752, 3),
    _c(
        "江苏",
        "江苏省",
        "南京市",
        "玄武区:320102,鼓楼区:320106,建邺区:320105",
        "苏A",
        32.060,
        118.797,
        5,
    ),
    _c(
        "江苏",
        "江苏省",
        "苏州市",
        "姑苏区:320508,吴中区:320506,相城区:320507",
        "苏E",
        31.299,
        120.585,
        5,
    ),
    _c("江苏", "江苏省", "无锡市", "梁溪区:320213,滨湖区:320211", "苏B", 31.491, 120.312, 2),
    _c(
        "浙江",
        "浙江省",
        "杭州市",
        "西湖区:330106,上城区:330102,拱墅区:330105,滨江区:330108",
        "浙A",
        30.274,
        120.155,
        7,
    ),
    _c("浙江", "浙江省", "宁波市", "鄞州区:330212,海曙区:330203", "浙B", 29.868, 121.544, 3),
    _c("浙江", "浙江省", "温州市", "鹿城区:330302,瓯海区:330304", "浙C", 27.994, 120.699, 2),
    _c(
        "四川",
        "四川省",
        "成都市",
        "武侯区:510107,锦江区:510104,青羊区:510105,成华区:510108",
        "川A,川G",
        30.573,
        104.066,
        6,
    ),
    _c(
        "湖北",
        "湖北省",
        "武汉市",
        "武昌区:420106,江汉区:420103,洪山区:420111",
        "鄂A",
        30.593,
        114.305,
        5,
    ),
    _c("山东", "山东省", "济南市", "历下区:370102,市中区:370103", "鲁A", 36.651, 117.120, 3),
    _c("山东", "山东省", "青岛市", "市南区:370202,崂山区:370212", "鲁B,鲁U", 36.067, 120.383, 3),
    _c("河南", "河南省", "郑州市", "金水区:410105,二七区:410103", "豫A", 34.747, 113.625, 4),
    _c("湖南", "湖南省", "长沙市", "岳麓区:430104,芙蓉区:430102", "湘A", 28.228, 112.939, 3),
    _c("陕西", "陕西省", "西安市", "雁塔区:610113,碑林区:610103", "陕A,陕U", 34.341, 108.940, 3),
    _c("福建", "福建省", "福州市", "鼓楼区:350102,台江区:350103", "闽A", 26.074, 119.296, 2),
    _c("福建", "福建省", "厦门市", "思明区:350203,湖里区:350206", "闽D", 24.480, 118.089, 2),
    _c("辽宁", "辽宁省", "沈阳市", "和平区:210102,沈河区:210103", "辽A", 41.806, 123.432, 2),
    _c("辽宁", "辽宁省", "大连市", "中山区:210202,沙河口区:210204", "辽B", 38.914, 121.615, 2),
    _c("安徽", "安徽省", "合肥市", "蜀山区:340104,包河区:340111", "皖A", 31.821, 117.227, 2),
    _c("河北", "河北省", "石家庄市", "长安区:130102,桥西区:130104", "冀A", 38.042, 114.514, 2),
    _c("云南", "云南省", "昆明市", "五华区:530102,盘龙区:530103", "云A", 25.038, 102.718, 2),
    _c("黑龙江", "黑龙江省", "哈尔滨市", "南岗区:230103,道里区:230102", "黑A", 45.803, 126.535, 2),
    _c(
        "广西", "广西壮族自治区", "南宁市", "青秀区:450103,兴宁区:450102", "桂A", 22.817, 108.366, 2
    ),
)
_EXPAT_CITIES: Final = ("上海市", "北京市", "深圳市", "广州市", "苏州市")

_STREETS: Final = (
    "人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "长江路", "黄河路", "文化路",
    "胜利路", "青年路", "朝阳路", "光明路", "东风路", "滨江路", "科技路", "学府路", "世纪大道",
    "迎宾大道", "友谊路", "花园路", "复兴路", "工业大道", "南京路", "北京路", "延安路",
)  # fmt: skip
_COMPOUNDS: Final = (
    "阳光花园", "锦绣家园", "翠湖小区", "金色家园", "东方名苑", "华府公寓", "绿地花园", "万科城",
    "保利花园", "碧桂园", "幸福里", "紫荆苑", "新城公馆", "滨江一号", "海棠湾", "春江花月",
)  # fmt: skip

_SURNAMES: Final = (
    ("王", "wang", 72),
    ("李", "li", 72),
    ("张", "zhang", 68),
    ("刘", "liu", 54),
    ("陈", "chen", 46),
    ("杨", "yang", 32),
    ("赵", "zhao", 21),
    ("黄", "huang", 21),
    ("周", "zhou", 20),
    ("吴", "wu", 20),
    ("徐", "xu", 15),
    ("孙", "sun", 15),
    ("胡", "hu", 13),
    ("朱", "zhu", 12),
    ("高", "gao", 12),
    ("林", "lin", 11),
    ("何", "he", 11),
    ("郭", "guo", 11),
    ("马", "ma", 11),
    ("罗", "luo", 9),
    ("梁", "liang", 9),
    ("宋", "song", 7),
    ("郑", "zheng", 7),
    ("谢", "xie", 7),
    ("韩", "han", 6),
    ("唐", "tang", 6),
    ("冯", "feng", 6),
    ("于", "yu", 6),
    ("董", "dong", 5),
    ("萧", "xiao", 4),
    ("程", "cheng", 5),
    ("曹", "cao", 5),
    ("袁", "yuan", 5),
    ("邓", "deng", 5),
    ("许", "xu", 5),
    ("欧阳", "ouyang", 1),
    ("司马", "sima", 1),
)
_GIVEN_M: Final = (
    ("伟", "wei"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"),
    ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("刚", "gang"), ("平", "ping"),
    ("辉", "hui"), ("鹏", "peng"), ("华", "hua"), ("飞", "fei"), ("鑫", "xin"), ("波", "bo"),
    ("斌", "bin"), ("宇", "yu"), ("浩", "hao"), ("凯", "kai"), ("俊", "jun"), ("帆", "fan"),
    ("峰", "feng"), ("志", "zhi"), ("建", "jian"), ("国", "guo"), ("文", "wen"), ("博", "bo"),
    ("子", "zi"), ("轩", "xuan"), ("睿", "rui"), ("晨", "chen"),
)  # fmt: skip
_GIVEN_F: Final = (
    ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("艳", "yan"),
    ("娟", "juan"), ("霞", "xia"), ("秀", "xiu"), ("英", "ying"), ("玲", "ling"), ("婷", "ting"),
    ("雪", "xue"), ("慧", "hui"), ("颖", "ying"), ("琳", "lin"), ("欣", "xin"), ("怡", "yi"),
    ("佳", "jia"), ("悦", "yue"), ("晶", "jing"), ("倩", "qian"), ("雯", "wen"), ("萍", "ping"),
    ("红", "hong"), ("梅", "mei"), ("丹", "dan"), ("蕾", "lei"), ("璐", "lu"), ("瑶", "yao"),
    ("子", "zi"), ("涵", "han"), ("诗", "shi"), ("雨", "yu"),
)  # fmt: skip
_LATIN_FIRST: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "GB": (
        ("James", "Oliver", "Harry", "George", "Thomas", "William", "Jack", "Daniel", "Matthew"),
        ("Olivia", "Amelia", "Emily", "Charlotte", "Sophie", "Grace", "Jessica", "Lucy", "Hannah"),
    ),
    "DE": (
        ("Lukas", "Felix", "Maximilian", "Jonas", "Leon", "Paul", "Tobias", "Florian", "Stefan"),
        ("Anna", "Lena", "Laura", "Julia", "Katharina", "Sophie", "Miriam", "Sabine", "Johanna"),
    ),
    "US": (
        ("Michael", "David", "John", "Robert", "Christopher", "Andrew", "Ryan", "Kevin", "Brian"),
        ("Jennifer", "Sarah", "Emily", "Ashley", "Megan", "Rachel", "Lauren", "Nicole", "Amanda"),
    ),
}
_LATIN_LAST: Final[dict[str, tuple[str, ...]]] = {
    "GB": ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Davies", "Evans", "Walker"),
    "DE": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann"),
    "US": ("Johnson", "Miller", "Anderson", "Thompson", "Martinez", "Clark", "Lewis", "Young"),
}
_GB_ADDRESSES: Final = (
    ("London", "{n} Camden Road, London NW1 9HA"),
    ("London", "Flat {f}, {n} Kennington Lane, London SE11 4HQ"),
    ("Manchester", "{n} Wilmslow Road, Manchester M14 5TQ"),
    ("Bristol", "{n} Gloucester Road, Bristol BS7 8AE"),
    ("Edinburgh", "{n} Leith Walk, Edinburgh EH6 8NP"),
)
_DE_ADDRESSES: Final = (
    ("Berlin", "Schönhauser Allee {n}, 10437 Berlin"),
    ("München", "Leopoldstraße {n}, 80802 München"),
    ("Hamburg", "Eppendorfer Weg {n}, 20259 Hamburg"),
    ("Stuttgart", "Königstraße {n}, 70173 Stuttgart"),
    ("Köln", "Aachener Straße {n}, 50674 Köln"),
)
_CN_MOBILE_PREFIXES: Final = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153",
    "155", "156", "157", "158", "159", "166", "176", "177", "178", "180", "181", "182", "183",
    "185", "186", "187", "188", "189", "191", "198", "199",
)  # fmt: skip
_CN_MAIL: Final = ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "139.com")


@dataclass(frozen=True, slots=True)
class _Model:
    make: str
    model: str
    wmi: str
    vds: str
    plant: str
    powertrain: Literal["ice", "phev", "bev"]
    msrp: tuple[int, int]
    weight: int


_MODELS: Final = (
    _Model("BYD", "Qin PLUS DM-i", "LGX", "C16DH", "A", "phev", (99_800, 145_800), 10),
    _Model("BYD", "Han EV", "LGX", "E74CM", "A", "bev", (169_800, 249_800), 5),
    _Model("BYD", "Song PLUS DM-i", "LGX", "D45DK", "B", "phev", (135_800, 169_800), 7),
    _Model("BYD", "Dolphin", "LGX", "E13BH", "C", "bev", (99_800, 126_800), 5),
    _Model("Tesla", "Model 3", "LRW", "3E7EA", "C", "bev", (231_900, 285_900), 5),
    _Model("Tesla", "Model Y", "LRW", "YGEEK", "C", "bev", (249_900, 299_900), 7),
    _Model("Volkswagen", "Lavida", "LSV", "A6BL2", "N", "ice", (99_900, 145_900), 8),
    _Model("Volkswagen", "Passat", "LSV", "C6E21", "A", "ice", (181_900, 251_900), 4),
    _Model("Volkswagen", "Sagitar", "LFV", "A2BU6", "3", "ice", (129_800, 185_800), 6),
    _Model("Geely", "Boyue L", "L6T", "79FT0", "N", "ice", (115_700, 147_700), 5),
    _Model("Geely", "Galaxy L7", "L6T", "7DX2D", "N", "phev", (138_700, 173_700), 3),
    _Model("Haval", "H6", "LGW", "EF6A5", "B", "ice", (98_900, 155_900), 6),
    _Model("Toyota", "Camry", "LVG", "BV1FK", "G", "ice", (179_800, 269_800), 5),
    _Model("Toyota", "Corolla", "LFM", "A3ABE", "D", "ice", (109_800, 149_800), 5),
    _Model("Honda", "CR-V", "LVH", "RW186", "G", "ice", (181_900, 276_900), 4),
    _Model("Honda", "Civic", "LHG", "FC163", "G", "ice", (129_900, 189_900), 3),
    _Model("BMW", "3 Series Li", "LBV", "5U310", "M", "ice", (299_900, 398_000), 3),
    _Model("Mercedes-Benz", "C-Class L", "LE4", "ZC1AB", "A", "ice", (333_900, 431_600), 3),
    _Model("Volvo", "XC60", "LVY", "PLAKD", "1", "ice", (376_900, 496_900), 2),
    _Model("Ford", "Mustang", "1FA", "6P8TH", "5", "ice", (399_800, 529_800), 1),
    _Model("Jeep", "Grand Cherokee", "1C4", "RJKBG", "C", "ice", (389_900, 569_900), 1),
    _Model("BMW", "X5", "WBA", "JU210", "L", "ice", (669_000, 879_000), 1),
    _Model("Porsche", "Cayenne", "WP1", "AA2AY", "L", "ice", (928_000, 1_420_000), 1),
)
_YEAR_CODES: Final = {
    2016: "G", 2017: "H", 2018: "J", 2019: "K", 2020: "L", 2021: "M", 2022: "N", 2023: "P",
    2024: "R", 2025: "S", 2026: "T", 2027: "V",
}  # fmt: skip
_PLATE_LETTERS: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_CARD_BINS: Final = ("622202", "622848", "621700", "622588", "623058", "625807", "436742", "524094")
_PART_NUMBERS: Final = (
    "5Q0-615-301-H",
    "04E 115 561 H",
    "3Q0 698 151 A",
    "90915-YZZE1",
    "ABC-88712",
)

_DELINQUENCY: Final[
    tuple[Literal["current", "dpd_1_30", "dpd_31_60", "dpd_61_90", "dpd_90_plus"], ...]
] = ("current", "dpd_1_30", "dpd_31_60", "dpd_61_90", "dpd_90_plus")
_DEALERS: Final = ("dealer-huadong", "dealer-nanfang")
_LENDERS: Final = ("lender-jinqiao", "lender-pearl")
_INSURER: Final = "insurer-anxin"


# ------------------------------------------------------------------------------------- builders


def _weighted(rng: random.Random, items: tuple[_City, ...]) -> _City:
    return rng.choices(items, weights=[c.weight for c in items])[0]


def _date_between(rng: random.Random, start: date, end: date) -> date:
    if end <= start:
        return start
    return start + timedelta(days=rng.randint(0, (end - start).days))


def _han_name(rng: random.Random, gender: Gender) -> tuple[str, str, str]:
    """(full name, surname pinyin, given pinyin)."""
    surname, sur_py, _ = rng.choices(_SURNAMES, weights=[s[2] for s in _SURNAMES])[0]
    pool = _GIVEN_M if gender == "M" else _GIVEN_F
    n = 1 if rng.random() < 0.35 else 2
    chars = [rng.choice(pool) for _ in range(n)]
    if n == 2 and chars[0][0] == chars[1][0] and rng.random() < 0.7:
        chars[1] = rng.choice(pool)
    given = "".join(c[0] for c in chars)
    return surname + given, sur_py, "".join(c[1] for c in chars)


def _prc_id(rng: random.Random, region: str, birth: date, gender: Gender) -> str:
    seq = rng.randint(0, 99)
    sex_digit = rng.choice("13579" if gender == "M" else "02468")
    body = f"{region}{birth:%Y%m%d}{seq:02d}{sex_digit}"
    return body + prc_id_check_char(body)


def _passport(rng: random.Random, nationality: str) -> str:
    if nationality == "DE":
        alphabet = "CFGHJKLMNPRTVWXYZ0123456789"
        return rng.choice("CFGHJK") + "".join(rng.choice(alphabet) for _ in range(8))
    return "".join(rng.choice("0123456789") for _ in range(9))


def _cn_mobile(rng: random.Random) -> str:
    return "+86" + rng.choice(_CN_MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"


def _cn_address(rng: random.Random, city: _City, district: str) -> str:
    street = rng.choice(_STREETS)
    compound = rng.choice(_COMPOUNDS)
    province = "" if city.province_full == city.city else city.province_full
    district_part = "" if district == city.city else district
    return (
        f"{province}{city.city}{district_part}{street}{rng.randint(1, 999)}号"
        f"{compound}{rng.randint(1, 28)}栋{rng.randint(1, 4)}单元"
        f"{rng.randint(2, 33)}{rng.randint(1, 4):02d}室"
    )


def _plate(rng: random.Random, city: _City, powertrain: str) -> str:
    prefix = rng.choice(city.plate_prefixes)
    digits = "0123456789"
    if powertrain in ("bev", "phev"):
        kind = "D" if powertrain == "bev" else "F"
        second = rng.choice(_PLATE_LETTERS + digits) if rng.random() < 0.4 else rng.choice(digits)
        serial = kind + second + "".join(rng.choice(digits) for _ in range(4))
    else:
        n_letters = rng.choices((0, 1, 2), weights=(5, 4, 1))[0]
        positions = set(rng.sample(range(5), n_letters))
        serial = "".join(
            rng.choice(_PLATE_LETTERS) if i in positions else rng.choice(digits) for i in range(5)
        )
    sep = "·" if rng.random() < 0.3 else ""
    return f"{prefix}{sep}{serial}"


def _vin(rng: random.Random, model: _Model, model_year: int) -> str:
    serial = f"{rng.randint(0, 999_999):06d}"
    draft = f"{model.wmi}{model.vds}0{_YEAR_CODES[model_year]}{model.plant}{serial}"
    return draft[:8] + vin_check_digit(draft) + draft[9:]


def _card(rng: random.Random) -> str:
    bin_ = rng.choice(_CARD_BINS)
    length = 19 if bin_.startswith("62") and rng.random() < 0.5 else 16
    body = bin_ + "".join(rng.choice("0123456789") for _ in range(length - len(bin_) - 1))
    return body + luhn_check_digit(body)


def _iban(rng: random.Random, country: str) -> str:
    if country == "DE":
        bban = "".join(rng.choice("0123456789") for _ in range(18))
    else:
        bban = rng.choice(("NWBK", "BARC", "LOYD", "HBUK")) + "".join(
            rng.choice("0123456789") for _ in range(14)
        )
    return country + iban_check_digits(country, bban) + bban


def _spaced_mobile(mobile: str, rng: random.Random) -> str:
    """A human way of writing a +86 mobile in free text."""
    national = mobile[3:]
    style = rng.randrange(4)
    if style == 0:
        return national
    if style == 1:
        return f"{national[:3]} {national[3:7]} {national[7:]}"
    if style == 2:
        return f"{national[:3]}-{national[3:7]}-{national[7:]}"
    return f"+86 {national[:3]} {national[3:7]} {national[7:]}"


# ------------------------------------------------------------------------------- free-text makers

_EN_CLAIM: Final = (
    "Rear-ended at a red light on {street}; rear bumper and tail lamp damaged.",
    "Parking scrape in the mall garage, left front door dented, no injuries.",
    "Hail damage to roof and bonnet after the storm on {day}.",
    "Windscreen cracked by a stone on the expressway, replacement requested.",
    "Collision with a delivery scooter while turning right; scooter rider unhurt.",
)
_ZH_CLAIM: Final = (
    "在{street}等红灯时被追尾，后保险杠和尾灯受损。",
    "商场地下车库停车时刮蹭，左前门凹陷，无人员受伤。",
    "{day}暴雨后车辆涉水，发动机无法启动，已拖至4S店。",
    "高速上被飞石击中，前挡风玻璃开裂，申请更换。",
    "右转时与外卖电动车发生碰撞，对方无受伤。",
)
_EN_SERVICE: Final = (
    ("maintenance", "Routine service: oil and filter changed, brake pads at 60 %."),
    ("maintenance", "Annual inspection passed; tyres rotated, cabin filter replaced."),
    ("repair", "Replaced front wiper motor under warranty."),
    ("recall", "Recall campaign: software update applied to the battery management system."),
)
_ZH_SERVICE: Final = (
    ("maintenance", "常规保养：更换机油机滤，刹车片剩余约六成。"),
    ("maintenance", "年检通过，轮胎换位，更换空调滤芯。"),
    ("repair", "保修期内更换前雨刮电机。"),
    ("recall", "召回活动：已升级电池管理系统软件。"),
)


def _claim_text(
    rng: random.Random, lang: str, vehicle: Vehicle, consumer: Consumer, other_city: _City
) -> tuple[str, Planted]:
    day = _date_between(rng, date(2025, 1, 1), AS_OF)
    street = rng.choice(_STREETS)
    planted: list[tuple[str, str]] = []
    if lang == "en":
        parts = [rng.choice(_EN_CLAIM).format(street=street, day=f"{day:%d %B %Y}")]
    else:
        parts = [rng.choice(_ZH_CLAIM).format(street=street, day=f"{day.month}月{day.day}日")]
    roll = rng.random()
    if roll < 0.35:
        planted.append(("CN_PLATE", vehicle.plate))
        parts.append(
            f"Insured vehicle plate {vehicle.plate}."
            if lang == "en"
            else f"标的车车牌{vehicle.plate}。"
        )
    if 0.25 < roll < 0.5:
        planted.append(("VIN", vehicle.vin))
        parts.append(f"VIN {vehicle.vin}." if lang == "en" else f"车架号{vehicle.vin}。")
    if rng.random() < 0.3:
        written = _spaced_mobile(consumer.mobile, rng)
        planted.append(("CN_MOBILE", written))
        parts.append(
            f"Call the owner back on {written}." if lang == "en" else f"车主电话{written}，请回电。"
        )
    if rng.random() < 0.2:
        third = _plate(rng, other_city, rng.choice(("ice", "bev")))
        planted.append(("CN_PLATE", third))
        parts.append(f"Third-party vehicle: {third}." if lang == "en" else f"三者车车牌{third}。")
    if rng.random() < 0.15 and consumer.id_type == "prc_id":
        planted.append(("PRC_ID", consumer.id_number))
        parts.append(
            f"Claimant ID {consumer.id_number}."
            if lang == "en"
            else f"报案人身份证号{consumer.id_number}。"
        )
    if rng.random() < 0.25:
        order = f"{day:%Y%m%d}{rng.randint(0, 10**10 - 1):010d}"
        parts.append(
            f"Repair order {order}, part {rng.choice(_PART_NUMBERS)}."
            if lang == "en"
            else f"维修工单号{order}，配件号{rng.choice(_PART_NUMBERS)}。"
        )
    return " ".join(parts) if lang == "en" else "".join(parts), tuple(planted)


def _service_text(
    rng: random.Random, lang: str, vehicle: Vehicle, consumer: Consumer
) -> tuple[str, str, Planted]:
    service_type, text = rng.choice(_EN_SERVICE if lang == "en" else _ZH_SERVICE)
    planted: list[tuple[str, str]] = []
    roll = rng.random()
    if roll < 0.15:
        planted.append(("VIN", vehicle.vin))
        text += f" Checked VIN {vehicle.vin}." if lang == "en" else f"核对车架号{vehicle.vin}。"
    elif roll < 0.25:
        written = _spaced_mobile(consumer.mobile, rng)
        planted.append(("CN_MOBILE", written))
        text += (
            f" Customer asked for a call on {written}."
            if lang == "en"
            else f"客户要求致电{written}。"
        )
    elif roll < 0.4:
        text += (
            f" Part {rng.choice(_PART_NUMBERS)} ordered."
            if lang == "en"
            else f"已订购配件{rng.choice(_PART_NUMBERS)}。"
        )
    return service_type, text, tuple(planted)


# ------------------------------------------------------------------------------------- generator


def generate_population(seed: int = 7, consumers: int = 200) -> Population:
    """Build the demo population for ``seed`` with ``consumers`` consumers (and one car each)."""
    if consumers < 0:
        raise ValueError("consumers must not be negative")
    rng = random.Random(seed)
    n_latin = round(consumers * 0.12)
    n_abroad = n_latin // 2
    profiles: list[tuple[NameScript, str, Jurisdiction]] = [("han", "CN", "CN")] * (
        consumers - n_latin
    )
    for i in range(n_latin):
        if i < n_abroad:
            nat = "GB" if i % 2 == 0 else "DE"
            profiles.append(("latin", nat, "GB" if nat == "GB" else "DE"))
        else:
            profiles.append(("latin", ("GB", "DE", "US")[i % 3], "CN"))
    rng.shuffle(profiles)

    out_consumers: list[Consumer] = []
    vehicles: list[Vehicle] = []
    deals: list[SalesDeal] = []
    applications: list[LoanApplication] = []
    decisions: list[LoanDecision] = []
    accounts: list[LoanAccount] = []
    policies: list[InsurancePolicy] = []
    telematics: list[TelematicsSummary] = []
    claims: list[InsuranceClaim] = []
    services: list[ServiceRecord] = []
    emails: set[str] = set()
    vins: set[str] = set()
    plates: set[str] = set()
    ids: set[str] = set()

    for index, (script, nationality, jurisdiction) in enumerate(profiles, start=1):
        ref = f"subj-{index:04d}"
        gender: Gender = rng.choice(("F", "M"))
        age_days = rng.randint(22 * 365, 66 * 365)
        birth = AS_OF - timedelta(days=age_days)
        home = _weighted(rng, _CITIES)
        if script == "latin" and jurisdiction == "CN":
            expat_city = rng.choice(_EXPAT_CITIES)
            home = next(c for c in _CITIES if c.city == expat_city)
        district, region = rng.choice(home.districts)

        if script == "han":
            full_name, sur_py, given_py = _han_name(rng, gender)
            local = rng.choice(
                (f"{sur_py}.{given_py}", f"{sur_py}{given_py}{birth:%y}", f"{given_py}{sur_py}")
            )
            domain = rng.choice(_CN_MAIL)
            if domain == "qq.com" and rng.random() < 0.6:
                local = str(rng.randint(10_000_000, 3_999_999_999))
        else:
            first = rng.choice(_LATIN_FIRST[nationality][0 if gender == "M" else 1])
            last = rng.choice(_LATIN_LAST[nationality])
            full_name = f"{first} {last}"
            local = f"{first}.{last}".lower().replace("ü", "ue").replace("ö", "oe")
            domain = {"GB": "outlook.com", "DE": "web.de", "US": "gmail.com"}[nationality]
        email = f"{local}@{domain}"
        while email in emails:
            email = f"{local}{rng.randint(1, 999)}@{domain}"
        emails.add(email)

        if script == "han":
            id_number = _prc_id(rng, region, birth, gender)
            while id_number in ids:
                id_number = _prc_id(rng, region, birth, gender)
            id_type: IdType = "prc_id"
        else:
            id_number, id_type = _passport(rng, nationality), "passport"
        ids.add(id_number)

        mobile = _cn_mobile(rng)
        if jurisdiction == "CN":
            address = _cn_address(rng, home, district)
            city_name, province = home.city, home.province
        elif jurisdiction == "GB":
            city_name, template = rng.choice(_GB_ADDRESSES)
            address = template.format(n=rng.randint(1, 240), f=rng.randint(1, 30))
            province = "England" if city_name != "Edinburgh" else "Scotland"
        else:
            city_name, template = rng.choice(_DE_ADDRESSES)
            address = template.format(n=rng.randint(1, 180))
            province = {
                "Berlin": "Berlin",
                "München": "Bayern",
                "Hamburg": "Hamburg",
                "Stuttgart": "Baden-Württemberg",
                "Köln": "Nordrhein-Westfalen",
            }[city_name]
        income = max(3_000, round(rng.lognormvariate(9.1, 0.5) / 100) * 100)
        consumer = Consumer(
            subject_ref=ref,
            full_name=full_name,
            name_script=script,
            gender=gender,
            birth_date=birth,
            nationality=nationality,
            id_type=id_type,
            id_number=id_number,
            mobile=mobile,
            email=email,
            address=address,
            city=city_name,
            province=province,
            jurisdiction=jurisdiction,
            monthly_income_cny=income,
        )
        out_consumers.append(consumer)

        # -- vehicle
        model = rng.choices(_MODELS, weights=[m.weight for m in _MODELS])[0]
        model_year = rng.randint(2019, 2026)
        build = _date_between(rng, date(model_year - 1, 7, 1), min(date(model_year, 6, 30), AS_OF))
        reg_city = home if jurisdiction == "CN" else _weighted(rng, _CITIES)
        vin = _vin(rng, model, model_year)
        while vin in vins:
            vin = _vin(rng, model, model_year)
        vins.add(vin)
        plate = _plate(rng, reg_city, model.powertrain)
        while plate.replace("·", "") in plates:
            plate = _plate(rng, reg_city, model.powertrain)
        plates.add(plate.replace("·", ""))
        msrp = round(rng.randint(*model.msrp) / 100) * 100
        vehicle = Vehicle(
            vin=vin,
            subject_ref=ref,
            make=model.make,
            model=model.model,
            powertrain=model.powertrain,
            model_year=model_year,
            build_date=build,
            msrp_cny=msrp,
            plate=plate,
            registered_province=reg_city.province,
            registered_city=reg_city.city,
        )
        vehicles.append(vehicle)

        # -- sales deal
        dealer = rng.choice(_DEALERS)
        deal_date = _date_between(
            rng, build + timedelta(days=20), min(build + timedelta(days=240), AS_OF)
        )
        price = round(msrp * rng.uniform(0.86, 1.0) / 100) * 100
        trade_in = round(rng.uniform(20_000, 90_000) / 100) * 100 if rng.random() < 0.3 else None
        note_planted: Planted = ()
        if rng.random() < 0.1 and jurisdiction == "CN":
            written = _spaced_mobile(mobile, rng)
            notes = f"Buyer prefers WeChat; backup number {written}."
            note_planted = (("CN_MOBILE", written),)
        else:
            notes = rng.choice(
                ("", "Paid deposit by card.", "首付已付清。", "Delivery with floor mats.")
            )
        deals.append(
            SalesDeal(
                f"deal-{index:05d}",
                dealer,
                ref,
                vin,
                deal_date,
                price,
                trade_in,
                notes,
                note_planted,
            )
        )

        # -- loan application, decision, account
        lender = rng.choice(_LENDERS)
        down = round(price * rng.choice((0.15, 0.2, 0.3, 0.4, 0.5)) / 100) * 100
        amount = price - down
        term = rng.choice((12, 24, 36, 36, 48, 60))
        applied = max(deal_date - timedelta(days=rng.randint(1, 14)), build)
        app_id = f"app-{index:05d}"
        applications.append(
            LoanApplication(app_id, dealer, lender, ref, vin, applied, amount, term, down, income)
        )
        burden = amount / term / max(income, 1)
        approved = burden < 0.6 and rng.random() > 0.08
        decided = applied + timedelta(days=rng.randint(0, 3))
        rate_band = rng.choice(("A", "B", "B", "C", "C", "D")) if approved else None
        decisions.append(
            LoanDecision(
                decision_id=f"dec-{index:05d}",
                application_id=app_id,
                lender_ref=lender,
                subject_ref=ref,
                decided_on=decided,
                outcome="approved" if approved else "declined",
                rate_band=rate_band,
                approved_amount_cny=amount if approved else None,
                reason_code="ok"
                if approved
                else ("dti_too_high" if burden >= 0.6 else "policy_rule"),
            )
        )
        if approved:
            opened = decided + timedelta(days=rng.randint(1, 10))
            months_elapsed = max(0, (AS_OF - opened).days // 30)
            remaining = max(0.0, 1 - months_elapsed / term)
            band_low = int(remaining * amount // 50_000 * 50_000)
            delinquency = rng.choices(_DELINQUENCY, weights=(86, 7, 3, 2, 2))[0]
            lien_released = remaining == 0.0
            accounts.append(
                LoanAccount(
                    account_id=f"acct-{index:05d}",
                    lender_ref=lender,
                    subject_ref=ref,
                    application_id=app_id,
                    vin=vin,
                    opened_on=opened,
                    principal_cny=amount,
                    term_months=term,
                    balance_band=f"{band_low}-{band_low + 50_000}",
                    delinquency=delinquency,
                    repayment_card=_card(rng),
                    lien=Lien(
                        lien_id=f"lien-{index:05d}",
                        registered_on=opened + timedelta(days=rng.randint(1, 15)),
                        authority=f"{reg_city.city}公安局交通警察支队车辆管理所",
                        status="released" if lien_released else "registered",
                    ),
                )
            )

        # -- insurance policy (renewed yearly; the current term covers AS_OF when possible)
        start = deal_date
        while start + timedelta(days=365) <= AS_OF - timedelta(days=rng.randint(0, 60)):
            start += timedelta(days=365)
        premium = round((msrp * rng.uniform(0.025, 0.045)) / 10) * 10
        policy_id = f"pol-{index:05d}"
        policies.append(
            InsurancePolicy(
                policy_id=policy_id,
                insurer_ref=_INSURER,
                subject_ref=ref,
                vin=vin,
                plate=plate,
                coverage=rng.choices(("compulsory", "third_party", "comprehensive"), (1, 2, 7))[0],
                premium_band=f"{premium // 2000 * 2000}-{premium // 2000 * 2000 + 2000}",
                annual_premium_cny=premium,
                start_date=start,
                end_date=start + timedelta(days=364),
                payout_iban=_iban(rng, jurisdiction) if jurisdiction != "CN" else None,
            )
        )

        # -- telematics: the last three months
        odometer = max(500, int((AS_OF - deal_date).days * rng.uniform(25, 60)))
        style = rng.uniform(0, 1)
        for back in (2, 1, 0):
            year, month0 = divmod(AS_OF.year * 12 + AS_OF.month - 2 - back, 12)
            month = month0 + 1
            distance = rng.randint(400, 2_600)
            telematics.append(
                TelematicsSummary(
                    summary_id=f"tel-{index:05d}-{year}{month:02d}",
                    vin=vin,
                    subject_ref=ref,
                    period=f"{year}-{month:02d}",
                    odometer_km=odometer - back * distance,
                    trips=rng.randint(20, 140),
                    distance_km=distance,
                    night_driving_share=round(rng.uniform(0.0, 0.35), 2),
                    harsh_braking_score=max(0, min(100, int(rng.gauss(30 + 50 * style, 10)))),
                    last_lat=round(reg_city.lat + rng.uniform(-0.15, 0.15), 6),
                    last_lon=round(reg_city.lon + rng.uniform(-0.15, 0.15), 6),
                )
            )

        # -- claims (0-2)
        for k in range(rng.choices((0, 1, 2), weights=(55, 35, 10))[0]):
            lang: Literal["en", "zh"] = "en" if script == "latin" or rng.random() < 0.3 else "zh"
            text, planted = _claim_text(rng, lang, vehicle, consumer, _weighted(rng, _CITIES))
            claims.append(
                InsuranceClaim(
                    claim_id=f"clm-{index:05d}-{k + 1}",
                    policy_id=policy_id,
                    insurer_ref=_INSURER,
                    subject_ref=ref,
                    vin=vin,
                    incident_date=_date_between(rng, deal_date, AS_OF),
                    amount_cny=round(rng.lognormvariate(8.5, 0.9) / 10) * 10,
                    status=rng.choices(("open", "settled", "rejected"), (3, 6, 1))[0],
                    language=lang,
                    description=text,
                    planted=planted,
                )
            )

        # -- service history: roughly one visit per 10,000 km, at most four
        visits = min(4, odometer // 10_000)
        for k in range(visits):
            lang = "en" if script == "latin" or rng.random() < 0.3 else "zh"
            service_type, remarks, planted = _service_text(rng, lang, vehicle, consumer)
            services.append(
                ServiceRecord(
                    service_id=f"svc-{index:05d}-{k + 1}",
                    dealer_ref=dealer,
                    vin=vin,
                    subject_ref=ref,
                    service_date=min(
                        AS_OF, deal_date + timedelta(days=90 * k + rng.randint(0, 89))
                    ),
                    odometer_km=(k + 1) * 10_000 + rng.randint(-800, 800),
                    service_type=service_type,
                    cost_cny=rng.randint(3, 40) * 50,
                    language=lang,
                    remarks=remarks,
                    planted=planted,
                )
            )

    return Population(
        seed=seed,
        as_of=AS_OF,
        partners=PARTNERS,
        consumers=tuple(out_consumers),
        vehicles=tuple(vehicles),
        sales_deals=tuple(deals),
        loan_applications=tuple(applications),
        loan_decisions=tuple(decisions),
        loan_accounts=tuple(accounts),
        insurance_policies=tuple(policies),
        telematics=tuple(telematics),
        claims=tuple(claims),
        service_records=tuple(services),
    )
