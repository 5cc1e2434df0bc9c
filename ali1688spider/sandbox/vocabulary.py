"""Word lists the catalogue composes offers from: categories, materials, places, sellers.

Pure data. Attribute and category ids are invented but stable, so a catalogue built from the
same seed is the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

COLOR_ATTRIBUTE = (3216, "颜色")
SIZE_ATTRIBUTE = (450, "尺码")

COLORS = (
    "黑色", "白色", "灰色", "藏青色", "红色", "粉色", "卡其色", "军绿色", "天蓝色", "米白色", "紫色", "黄色",
)
CLOTHES_SIZES = ("S", "M", "L", "XL", "2XL", "3XL", "4XL")
SHOE_SIZES = ("36", "37", "38", "39", "40", "41", "42", "43", "44", "45")


@dataclass(frozen=True)
class SkuDimension:
    """One SKU axis, e.g. colour or size. The first axis of an offer carries the SKU images."""

    attribute_id: int
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Category:
    category_id: int
    name: str
    nouns: tuple[str, ...]
    materials: tuple[str, ...]
    adjectives: tuple[str, ...]
    audiences: tuple[str, ...]
    unit: str
    dimensions: tuple[SkuDimension, ...]
    price_cents: tuple[int, int]  # lowest and highest first-tier price
    weight_grams: tuple[int, int]


def _colors() -> SkuDimension:
    return SkuDimension(*COLOR_ATTRIBUTE, COLORS)


CATEGORIES: tuple[Category, ...] = (
    Category(127380009, "男式T恤", ("短袖T恤", "圆领T恤", "POLO衫", "半袖体恤"),
             ("纯棉", "精梳棉", "冰丝", "莫代尔", "棉麻"), ("宽松", "修身", "潮牌", "简约", "百搭", "韩版"),
             ("男", "男士", "情侣"), "件", (_colors(), SkuDimension(*SIZE_ATTRIBUTE, CLOTHES_SIZES)),
             (890, 4500), (150, 350)),
    Category(127380010, "连衣裙", ("连衣裙", "碎花裙", "长裙", "吊带裙"),
             ("雪纺", "棉麻", "醋酸", "针织"), ("法式", "复古", "气质", "收腰", "显瘦"),
             ("女", "女士"), "件", (_colors(), SkuDimension(*SIZE_ATTRIBUTE, CLOTHES_SIZES[:5])),
             (2500, 12800), (200, 500)),
    Category(1038378, "运动鞋", ("运动鞋", "跑步鞋", "休闲鞋", "板鞋", "老爹鞋"),
             ("飞织", "网面", "真皮", "PU"), ("透气", "轻便", "防滑", "增高"),
             ("男", "女", "情侣"), "双", (_colors(), SkuDimension(*SIZE_ATTRIBUTE, SHOE_SIZES)),
             (2900, 15900), (500, 1100)),
    Category(1031919, "袜子", ("中筒袜", "船袜", "棉袜", "运动袜"),
             ("纯棉", "竹纤维", "锦纶"), ("吸汗", "防臭", "薄款", "加厚"),
             ("男", "女", "儿童"), "双", (_colors(),), (90, 800), (30, 80)),
    Category(1044209, "手机壳", ("手机壳", "保护套", "磁吸手机壳"),
             ("硅胶", "TPU", "液态硅胶", "皮革"), ("防摔", "全包", "透明", "磨砂"),
             ("",), "个",
             (_colors(), SkuDimension(1627207, "适用型号",
                                      ("iPhone15", "iPhone15Pro", "iPhone14", "华为Mate60", "小米14", "OPPO Reno11"))),
             (150, 1800), (30, 60)),
    Category(1048147, "保温杯", ("保温杯", "真空杯", "咖啡杯", "吸管杯"),
             ("304不锈钢", "316不锈钢", "钛"), ("大容量", "便携", "车载", "智能显温"),
             ("", "学生"), "个", (_colors(), SkuDimension(100017, "容量", ("350ml", "500ml", "750ml", "1000ml"))),
             (1200, 6800), (250, 600)),
    Category(1048255, "收纳盒", ("收纳盒", "收纳箱", "储物盒", "整理箱"),
             ("塑料", "PP", "布艺", "竹制"), ("可折叠", "带盖", "大号", "透明"),
             ("",), "个", (_colors(), SkuDimension(1234, "规格", ("小号", "中号", "大号", "特大号"))),
             (350, 3900), (200, 1500)),
    Category(1032640, "床上四件套", ("四件套", "床单被套", "三件套"),
             ("纯棉", "水洗棉", "天丝", "磨毛"), ("简约", "北欧风", "ins风", "亲肤"),
             ("",), "套", (SkuDimension(3216, "颜色", ("灰格", "蓝白条", "奶油白", "豆沙粉", "浅咖")),
                          SkuDimension(100031, "尺寸", ("1.2m床", "1.5m床", "1.8m床", "2.0m床"))),
             (5900, 29900), (1500, 3500)),
    Category(1039476, "积木玩具", ("积木", "拼装积木", "益智玩具", "拼图"),
             ("塑料", "木质", "ABS"), ("益智", "早教", "大颗粒", "兼容乐高"),
             ("儿童",), "套", (SkuDimension(1236, "款式", ("城市系列", "动物系列", "交通系列", "恐龙系列")),
                              SkuDimension(1234, "规格", ("100粒", "200粒", "500粒"))),
             (990, 8900), (300, 1200)),
    Category(1032853, "双肩包", ("双肩包", "电脑包", "书包", "旅行背包"),
             ("牛津布", "尼龙", "帆布", "PU皮"), ("大容量", "防水", "商务", "轻便"),
             ("男", "女", "学生"), "个", (_colors(),), (1900, 9900), (400, 1000)),
    Category(1045012, "厨房用具", ("锅铲", "汤勺", "厨具套装", "硅胶铲"),
             ("食品级硅胶", "不锈钢", "榉木"), ("耐高温", "不粘锅专用", "家用"),
             ("",), "个", (_colors(), SkuDimension(1234, "规格", ("单个", "五件套", "十件套"))),
             (250, 4900), (80, 900)),
    Category(1043652, "数据线", ("数据线", "快充线", "充电线"),
             ("编织", "TPE", "铝合金"), ("快充", "加长", "三合一"),
             ("",), "个", (_colors(), SkuDimension(100029, "长度", ("1米", "1.5米", "2米", "3米"))),
             (180, 1900), (30, 90)),
)

SUBJECT_PREFIXES = ("2024新款", "2025新款", "跨境", "厂家直销", "ins风", "爆款", "外贸", "")
SUBJECT_SUFFIXES = ("批发", "一件代发", "厂家批发", "现货", "跨境专供", "")

BRANDS = ("其他", "OEM", "恒源", "佳诺", "优品汇", "简境", "欧诗朗", "拾光")
SELLING_POINTS = ("做工精细", "现货速发", "支持混批", "品质保证", "源头工厂", "48小时发货")

#: (province, city) pairs of ``sendGoodsAddressText``, e.g. "浙江省 金华市".
PLACES = (
    ("浙江省", "金华市"), ("浙江省", "杭州市"), ("浙江省", "温州市"), ("浙江省", "宁波市"),
    ("广东省", "广州市"), ("广东省", "深圳市"), ("广东省", "东莞市"), ("广东省", "汕头市"),
    ("福建省", "泉州市"), ("福建省", "莆田市"), ("江苏省", "苏州市"), ("江苏省", "南通市"),
    ("山东省", "临沂市"), ("河北省", "保定市"),
)

#: Trade names of seller companies, with a pinyin form for latin login ids.
TRADE_NAMES = (
    ("恒达", "hengda"), ("鑫源", "xinyuan"), ("盛世", "shengshi"), ("华美", "huamei"),
    ("宏图", "hongtu"), ("佳诚", "jiacheng"), ("锦泰", "jintai"), ("永兴", "yongxing"),
    ("博远", "boyuan"), ("润丰", "runfeng"), ("万邦", "wanbang"), ("天成", "tiancheng"),
)
INDUSTRIES = ("贸易", "商贸", "实业", "电子商务", "服饰", "日用品", "工艺品")

#: Units and their English names (crossborder ``unitInfo.transUnit``).
UNIT_TRANSLATIONS = {"件": "piece", "个": "piece", "双": "pair", "套": "set"}

#: Countries (translation languages) the crossborder API accepts.
COUNTRIES = ("en", "ja", "ko", "ru", "vi", "fr", "pt", "es")

#: Offer-level attributes: (attribute id, name).
BRAND_ATTRIBUTE = (2176, "品牌")
MATERIAL_ATTRIBUTE = (4921, "材质")
ORIGIN_ATTRIBUTE = (1398, "产地")
CARGO_ATTRIBUTE = (346, "货号")
STYLE_ATTRIBUTE = (2900, "风格")
AUDIENCE_ATTRIBUTE = (1800, "适用人群")
IMPORTED_ATTRIBUTE = (8614, "是否进口")
CROSSBORDER_ATTRIBUTE = (193290002, "是否跨境货源")
