"""A deterministic catalogue of 1688 offers: every offer is computed from (seed, offer id).

Nothing is stored. Any 9-15 digit id either exists (about 97 %) or does not; an existing id
always yields the same :class:`Offer`. Money is kept in integer cents, so no price is ever a
float artefact; :func:`money_text` and :func:`money_number` turn cents into what the APIs send.

Epochs let prices and stock change between fetches. Epoch 0 is the base catalogue above. At each
epoch ``e > 0`` a share ``drift_share`` of the offers (default 30 %, in steps of 0.01 %), chosen
from ``(seed, id, e)``, *drift*: their price tiers, SKU prices, retail and consign prices are the
base ones times one factor of 0.80-0.97 or 1.03-1.20 (integer cents, rounded half up; tier prices
stay > 0 and strictly falling with quantity), their stock (``amountOnSale`` of the SKUs and of
the offer) changes, and their ``lastUpdateTime`` moves ``e`` days (and a few hours) past the base
one. Nothing else changes: subject, SKU ids, images, attributes, status and the creation date stay
those of epoch 0.

The rule: the offer at epoch ``e`` is the base offer with the drift of the latest epoch ``d <= e``
in which the offer was chosen (the base offer itself if there is none), so a drift is not
compounded and lasts until the offer is chosen again: an offer chosen at epoch 1 but not at 2
still has its epoch-1 prices at epoch 2. A drift depends on ``(seed, id, d)`` only, hence a given
``(seed, id, e)`` always gives the same offer. The share only decides which offers are chosen: an
offer chosen at ``d`` under two shares drifts the same way under both, and a smaller share's
choices are a subset of a larger one's (the same draw is compared with a lower threshold).
:meth:`Catalogue.drift_epoch` tells ``d``; :meth:`Catalogue.drifted_ids` tells which offers differ
from epoch ``e - 1``.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache

from . import vocabulary as vocab
from .offers import Attribute, Offer, PriceTier, Seller, Sku, SkuValue, absolute_image, money_number, money_text

__all__ = [
    "Attribute", "Catalogue", "Offer", "OfferHead", "PriceTier", "Seller", "Sku", "SkuValue", "absolute_image",
    "check_epoch", "drift_threshold", "money_number", "money_text",
]

MIN_OFFER_ID = 10**8  # 9 digits
MAX_OFFER_ID = 10**15 - 1  # 15 digits
DEFAULT_FIRST_ID = 600_000_000_000
MISSING_PER_10000 = 300  # about 3 % of ids do not exist
DRIFT_SCALE = 10000  # the drift share is kept in steps of 1 / DRIFT_SCALE
DEFAULT_DRIFT_SHARE = 0.30  # about 30 % of the offers drift at each epoch > 0
MAX_EPOCH = 10**9
_DRIFT_PER_MILLE = (30, 200)  # a drift moves prices by 3.0-20.0 %, up or down

_BASE62 = string.digits + string.ascii_letters
_EPOCH = datetime(2018, 1, 1, 8, 0, 0)
_CREATE_SPAN = int((datetime(2025, 6, 30) - _EPOCH).total_seconds())


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(_BASE62, k=length))


def _image_path(rng: random.Random, user_id: int) -> str:
    return f"img/ibank/O1CN01{_token(rng, 20)}_!!{user_id}-0-cib.jpg"


def _value_id(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=4).digest(), "big") & 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class OfferHead:
    """What an offer's first draws decide: enough to find, filter and sort offers without
    building them (:meth:`Catalogue.head`). ``tiers`` are those of epoch 0."""

    offer_id: int
    category: vocab.Category
    seller_index: int  # :meth:`Catalogue.seller`
    material: str
    adjective: str
    audience: str
    subject: str
    tiers: tuple[PriceTier, ...]


class Catalogue:
    """All offers of one seed. ``Catalogue(seed).offer(id)`` is ``None`` for a missing id."""

    def __init__(self, seed: int = 1688, *, sellers: int = 5000, drift_share: float = DEFAULT_DRIFT_SHARE) -> None:
        self.seed = seed
        self._sellers = sellers
        self.drift_share = drift_share
        self._drift_threshold = drift_threshold(drift_share)
        self._cached_offer = lru_cache(maxsize=2048)(self._build_offer)
        self._drifted_offer = lru_cache(maxsize=2048)(self._build_drift)
        self._seller = lru_cache(maxsize=1024)(self._build_seller)

    @property
    def seller_count(self) -> int:
        """How many sellers the offers are spread over (seller indexes ``0..seller_count - 1``)."""
        return self._sellers

    def offer(self, offer_id: int | str, epoch: int = 0) -> Offer | None:
        """The offer with this id at ``epoch`` (see the module's docstring), or ``None`` when the id
        is malformed or does not exist. ``ValueError`` for an epoch outside ``0..MAX_EPOCH``."""
        check_epoch(epoch)
        number = _as_id(offer_id)
        if number is None:
            return None
        drift = self._latest_drift(number, epoch) if epoch else 0
        return self._cached_offer(number) if drift == 0 else self._drifted_offer(number, drift)

    # -- epochs ---------------------------------------------------------------------------

    def drift_epoch(self, offer_id: int | str, epoch: int) -> int:
        """The latest epoch ``<= epoch`` in which this offer drifted: the offer at ``epoch`` is the
        offer at that epoch. 0 when it never drifted, or for a malformed or missing id."""
        check_epoch(epoch)
        number = _as_id(offer_id)
        if number is None or epoch == 0 or not self.exists(number):
            return 0
        return self._latest_drift(number, epoch)

    def drifted_ids(self, ids: Iterable[int | str], epoch: int) -> list[int]:
        """Those of ``ids`` (as ints, in their order) whose offer at ``epoch`` differs from the
        offer at ``epoch - 1``; none at epoch 0. Missing and malformed ids never drift."""
        check_epoch(epoch)
        changed: list[int] = []
        for offer_id in ids:
            number = _as_id(offer_id)
            if number is None or epoch == 0 or not self._chosen(number, epoch):
                continue  # not chosen at ``epoch``: the same offer as at ``epoch - 1``
            now = self.offer(number, epoch)
            if now is not None and now != self.offer(number, epoch - 1):
                changed.append(number)
        return changed

    def _chosen(self, number: int, epoch: int) -> bool:
        digest = hashlib.blake2b(f"{self.seed}:drift:{number}:{epoch}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % DRIFT_SCALE < self._drift_threshold

    def _latest_drift(self, number: int, epoch: int) -> int:
        # (1 - share) ** k: at 30 % an offer is hardly ever left unchosen for more than a few dozen
        # epochs; at 1 % this looks back about a hundred epochs, still cheap hashes.
        for candidate in range(epoch, 0, -1):
            if self._chosen(number, candidate):
                return candidate
        return 0

    # -- existence ------------------------------------------------------------------------

    def exists(self, offer_id: int | str) -> bool:
        """Whether the id is a 9-15 digit offer id that this catalogue holds."""
        number = _as_id(offer_id)
        if number is None:
            return False
        digest = hashlib.blake2b(f"{self.seed}:{number}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % 10000 >= MISSING_PER_10000

    def offer_ids(self, n: int, start: int = DEFAULT_FIRST_ID) -> list[int]:
        """``n`` distinct existing ids from ``start`` upwards (irregular gaps, like real ids)."""
        return self._walk(n, start, want=True)

    def missing_ids(self, n: int, start: int = DEFAULT_FIRST_ID) -> list[int]:
        """``n`` distinct well-formed ids that do not exist (the API answers "商品不存在")."""
        return self._walk(n, start, want=False)

    def _walk(self, n: int, start: int, *, want: bool) -> list[int]:
        rng = random.Random(f"{self.seed}:ids:{start}")
        found: list[int] = []
        current = max(start, MIN_OFFER_ID) - 1
        while len(found) < n:
            current += rng.randint(1, 9973)
            if current > MAX_OFFER_ID:
                raise ValueError("ran out of 15-digit ids: choose a lower start")
            if self.exists(current) is want:
                found.append(current)
        return found

    # -- heads: cheap parts of offers, for the discovery APIs' index ----------------------

    def head(self, offer_id: int | str) -> OfferHead | None:
        """The first draws of the offer with this id (category, seller, subject, base price tiers),
        without building the rest: about twenty times cheaper than :meth:`offer`, for indexing
        many offers. ``None`` when the id is malformed or does not exist."""
        number = _as_id(offer_id)
        found = None if number is None else self._head(number)
        return None if found is None else found[0]

    def seller(self, index: int) -> Seller:
        """The seller numbered ``index`` (``0 <= index < seller_count``), as :attr:`OfferHead.seller_index` names it."""
        return self._seller(index)

    def tiers(self, head: OfferHead, epoch: int = 0) -> tuple[PriceTier, ...]:
        """The price tiers of the offer of ``head`` at ``epoch``: those of ``offer(id, epoch)``,
        computed without building the offer."""
        check_epoch(epoch)
        drift = self._latest_drift(head.offer_id, epoch) if epoch else 0
        if drift == 0:
            return head.tiers
        return _scaled_tiers(head.tiers, self._drift_draw(head.offer_id, drift)[1])

    # -- generation -----------------------------------------------------------------------

    def _build_seller(self, index: int) -> Seller:
        rng = random.Random(f"{self.seed}:seller:{index}")
        province, city = rng.choice(vocab.PLACES)
        trade, pinyin = rng.choice(vocab.TRADE_NAMES)
        industry = rng.choice(vocab.INDUSTRIES)
        user_id = rng.choice((2_200_000_000_000, 2_210_000_000_000)) + rng.randrange(10**10)
        if rng.random() < 0.5:
            login_id = f"{city[:-1]}{trade}{industry}"
        else:
            login_id = f"{pinyin}{rng.choice(('', 'shop', 'maoyi', 'gongsi'))}{rng.randint(2008, 2024)}"
        return Seller(
            user_id=user_id,
            login_id=login_id,
            open_id="BBB" + _token(rng, 22),
            company=f"{city}{trade}{industry}有限公司",
            province=province,
            city=city,
            trade_score=f"{rng.randint(40, 50) / 10:.1f}",
        )

    def _head(self, offer_id: int) -> tuple[OfferHead, random.Random] | None:
        """The head of an offer and its rng after the head's draws (``_build_offer`` goes on with
        it), or ``None`` for a missing id. The one place these draws are made, so the index of the
        discovery APIs and the offers never disagree."""
        if not self.exists(offer_id):
            return None
        rng = random.Random(f"{self.seed}:offer:{offer_id}")
        category = rng.choice(vocab.CATEGORIES)
        seller_index = rng.randrange(self._sellers)
        material = rng.choice(category.materials)
        adjective = rng.choice(category.adjectives)
        audience = rng.choice(category.audiences)
        subject = "".join((
            rng.choice(vocab.SUBJECT_PREFIXES), material, rng.choice(category.nouns), audience,
            adjective, rng.choice(vocab.SUBJECT_SUFFIXES),
        ))
        tiers = _price_tiers(rng, category)
        return OfferHead(offer_id, category, seller_index, material, adjective, audience, subject, tiers), rng

    def _build_offer(self, offer_id: int) -> Offer | None:
        found = self._head(offer_id)
        if found is None:
            return None
        head, rng = found  # the rng goes on where the head's draws ended
        category, seller, tiers = head.category, self.seller(head.seller_index), head.tiers
        material, adjective, audience, subject = head.material, head.adjective, head.audience, head.subject
        quote_type = 1 if rng.random() < 0.3 else 0
        images = tuple(_image_path(rng, seller.user_id) for _ in range(rng.randint(1, 8)))
        cargo_base = f"{rng.choice(string.ascii_uppercase)}{rng.randint(100, 9999)}" if rng.random() < 0.7 else ""
        skus = _skus(rng, category, offer_id, seller.user_id, tiers[0].price_cents, quote_type, cargo_base)
        amount = sum(s.amount_on_sale for s in skus) if skus else rng.randint(0, 99999)
        created = _EPOCH + timedelta(seconds=rng.randrange(_CREATE_SPAN))
        updated = created + timedelta(seconds=rng.randrange(1, 400 * 86400))
        roll = rng.random()
        status = "expired" if roll < 0.05 else "auditing" if roll < 0.07 else "published"
        attributes = _attributes(rng, category, material, adjective, audience, seller, cargo_base, skus)
        description = _description(rng, subject, material, adjective, seller.user_id)
        low, high = category.weight_grams
        return Offer(
            offer_id=offer_id,
            category_id=category.category_id,
            category_name=category.name,
            subject=subject,
            description=description,
            status=status,
            images=images,
            white_image=_image_path(rng, seller.user_id) if rng.random() < 0.4 else None,
            main_video=(f"https://cloud.video.taobao.com/play/u/{seller.user_id}/p/1/e/6/t/1/"
                        f"{rng.randrange(10**11, 10**12)}.mp4") if rng.random() < 0.3 else "",
            attributes=attributes,
            skus=skus,
            tiers=tiers,
            quote_type=quote_type,
            mix_wholesale=rng.random() < 0.6,
            unit=category.unit,
            min_order_quantity=tiers[0].start_quantity,
            amount_on_sale=amount,
            retail_cents=_round_up(tiers[0].price_cents * rng.randint(130, 200) // 100) if rng.random() < 0.3 else None,
            prices_as_text=rng.random() < 0.5,
            weight_grams=rng.randint(low, high),
            size_cm=(rng.randint(10, 60), rng.randint(8, 40), rng.randint(2, 30)),
            freight_template_id=rng.randint(10_000_000, 29_999_999),
            seller=seller,
            created=created,
            updated=updated,
            quality_level=rng.randint(1, 5),
        )

    def _build_drift(self, offer_id: int, epoch: int) -> Offer | None:
        """The base offer with the drift chosen at ``epoch``: prices, stock and the update time."""
        base = self._cached_offer(offer_id)
        if base is None:
            return None
        rng, per_mille = self._drift_draw(offer_id, epoch)
        tiers = _scaled_tiers(base.tiers, per_mille)
        first_base, first = base.tiers[0].price_cents, tiers[0].price_cents
        skus = []
        for sku in base.skus:
            # a SKU quoted at the first tier's price stays at it (quote type 0: all of them)
            price = first if sku.price_cents == first_base else _scale(sku.price_cents, per_mille)
            skus.append(replace(
                sku,
                amount_on_sale=_new_stock(rng, sku.amount_on_sale),
                price_cents=price,
                retail_cents=None if sku.retail_cents is None else max(
                    price, _round_up(_scale(sku.retail_cents, per_mille))),
                consign_cents=None if sku.consign_cents is None else max(
                    price, _scale(sku.consign_cents, per_mille)),
            ))
        amount = sum(s.amount_on_sale for s in skus) if skus else _new_stock(rng, base.amount_on_sale)
        return replace(
            base,
            tiers=tiers,
            skus=tuple(skus),
            amount_on_sale=amount,
            retail_cents=None if base.retail_cents is None else max(
                first, _round_up(_scale(base.retail_cents, per_mille))),
            # the seller edited the offer: lastUpdateTime moves on, later for a later epoch
            updated=base.updated + timedelta(days=epoch, seconds=rng.randrange(86400)),
        )

    def _drift_draw(self, offer_id: int, epoch: int) -> tuple[random.Random, int]:
        """The rng of the drift chosen at ``epoch`` and its price factor in per mille (the rng's
        first draws); :meth:`_build_drift` goes on with the rng, :meth:`tiers` needs the factor."""
        rng = random.Random(f"{self.seed}:drift:{offer_id}:{epoch}")
        return rng, 1000 + rng.choice((-1, 1)) * rng.randint(*_DRIFT_PER_MILLE)


def drift_threshold(share: float) -> int:
    """How many of every ``DRIFT_SCALE`` draws choose an offer: ``share`` rounded to the scale
    (0.30 → 3000, the rule of the fixed 30 % this replaced). ``ValueError`` outside ``[0, 1]``."""
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
        raise ValueError(f"the drift share must be a number within [0, 1], got {share!r}")
    return round(share * DRIFT_SCALE)


def check_epoch(epoch: int) -> None:
    """``ValueError`` unless ``epoch`` is an int within ``0..MAX_EPOCH``."""
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"the epoch must be an integer within 0..{MAX_EPOCH}, got {epoch!r}")


def _as_id(offer_id: int | str) -> int | None:
    if isinstance(offer_id, bool):
        return None
    if isinstance(offer_id, str):
        if not offer_id.isascii() or not offer_id.isdigit():
            return None
        offer_id = int(offer_id)
    return offer_id if MIN_OFFER_ID <= offer_id <= MAX_OFFER_ID else None


def _round_up(cents: int, step: int = 10) -> int:
    return -(-cents // step) * step


def _price_tiers(rng: random.Random, category: vocab.Category) -> tuple[PriceTier, ...]:
    low, high = category.price_cents
    price = rng.randint(low, high)
    if rng.random() < 0.5:
        price = price // 10 * 10  # many sellers quote whole dimes
    moq = rng.choice((1, 1, 2, 2, 3, 5, 10) if price > 1000 else (2, 5, 10, 20, 50, 100))
    count = rng.choice((1, 1, 2, 2, 3, 3, 3, 4, 5, 6))
    tiers = [PriceTier(moq, price)]
    quantity = moq
    for _ in range(count - 1):
        quantity = max(quantity + 1, quantity * rng.choice((2, 3, 5, 10)))
        price = max(1, price - max(1, price * rng.randint(2, 12) // 100))
        if price >= tiers[-1].price_cents:
            break
        tiers.append(PriceTier(quantity, price))
    return tuple(tiers)


def _scale(cents: int, per_mille: int) -> int:
    """``cents * per_mille / 1000``, rounded half up, at least 1 cent."""
    return max(1, (cents * per_mille + 500) // 1000)


def _scaled_tiers(tiers: tuple[PriceTier, ...], per_mille: int) -> tuple[PriceTier, ...]:
    """The tiers with scaled prices, still strictly falling with quantity (a price that rounding
    made equal to the next tier's is raised by a cent, from the last tier up)."""
    prices = [_scale(t.price_cents, per_mille) for t in tiers]
    for index in range(len(prices) - 2, -1, -1):
        prices[index] = max(prices[index], prices[index + 1] + 1)
    return tuple(PriceTier(t.start_quantity, price) for t, price in zip(tiers, prices, strict=True))


def _new_stock(rng: random.Random, stock: int) -> int:
    """Stock after some time: mostly sold, sometimes sold out or restocked."""
    roll = rng.random()
    if roll < 0.1:
        return 0
    if roll < 0.3:
        return stock + rng.randint(100, 5000)
    return max(0, stock - rng.randint(1, max(1, stock // 2)))


def _skus(
    rng: random.Random, category: vocab.Category, offer_id: int, user_id: int,
    base_cents: int, quote_type: int, cargo_base: str,
) -> tuple[Sku, ...]:
    if rng.random() < 0.15:
        return ()
    axes: list[tuple[vocab.SkuDimension, list[str]]] = []
    first = category.dimensions[0]
    axes.append((first, rng.sample(first.values, rng.randint(1, min(8, len(first.values))))))
    if len(category.dimensions) > 1 and rng.random() < 0.8:
        second = category.dimensions[1]
        axes.append((second, rng.sample(second.values, rng.randint(1, len(second.values)))))
    images = {value: _image_path(rng, user_id) for value in axes[0][1]} if rng.random() < 0.6 else {}
    combos: list[tuple[SkuValue, ...]] = []
    for value in axes[0][1]:
        head = SkuValue(axes[0][0].attribute_id, axes[0][0].name, value, images.get(value))
        if len(axes) == 1:
            combos.append((head,))
            continue
        dim = axes[1][0]
        combos.extend((head, SkuValue(dim.attribute_id, dim.name, other, None)) for other in axes[1][1])
    with_retail = rng.random() < 0.4
    with_consign = rng.random() < 0.5
    sku_base = 4_000_000_000_000 + (offer_id % 10**9) * 1000
    skus = []
    for index, values in enumerate(combos[:50]):
        price = base_cents
        if quote_type == 1:
            price = max(1, base_cents + rng.randint(-10, 25) * max(1, base_cents // 100))
        skus.append(Sku(
            sku_id=sku_base + index,
            spec_id=f"{rng.getrandbits(128):032x}",
            cargo_number=f"{cargo_base}-{index + 1:02d}" if cargo_base else "",
            amount_on_sale=rng.choice((0, rng.randint(1, 200), rng.randint(200, 9999))),
            price_cents=price,
            retail_cents=_round_up(price * rng.randint(130, 200) // 100) if with_retail else None,
            consign_cents=price + price * rng.randint(5, 15) // 100 if with_consign else None,
            values=values,
        ))
    return tuple(skus)


def _attributes(
    rng: random.Random, category: vocab.Category, material: str, adjective: str, audience: str,
    seller: Seller, cargo_base: str, skus: tuple[Sku, ...],
) -> tuple[Attribute, ...]:
    brand = rng.choice(vocab.BRANDS)
    rows: list[tuple[tuple[int, str], str, bool]] = [
        (vocab.BRAND_ATTRIBUTE, brand, brand not in ("其他", "OEM")),
        (vocab.MATERIAL_ATTRIBUTE, material, False),
        (vocab.ORIGIN_ATTRIBUTE, f"{seller.province[:-1]}{seller.city[:-1]}", False),
        (vocab.STYLE_ATTRIBUTE, adjective, False),
        (vocab.IMPORTED_ATTRIBUTE, "否", False),
        (vocab.CROSSBORDER_ATTRIBUTE, rng.choice(("是", "否")), False),
    ]
    if cargo_base:
        rows.append((vocab.CARGO_ATTRIBUTE, cargo_base, True))
    if audience:
        rows.append((vocab.AUDIENCE_ATTRIBUTE, audience, False))
    seen: set[tuple[int, str]] = set()
    for sku in skus:  # SKU values are listed among the attributes too, one row per value
        for value in sku.values:
            if (value.attribute_id, value.value) not in seen:
                seen.add((value.attribute_id, value.value))
                rows.append(((value.attribute_id, value.name), value.value, False))
    return tuple(
        Attribute(attribute_id, name, value, 0 if custom else _value_id(value), custom)
        for (attribute_id, name), value, custom in rows
    )


def _description(rng: random.Random, subject: str, material: str, adjective: str, user_id: int) -> str:
    points = "，".join(rng.sample(vocab.SELLING_POINTS, 2))
    parts = [f"<p>{subject}</p>", f"<p>【{adjective}】{material}材质，{points}</p>"]
    parts.extend(
        f'<p><img src="{absolute_image(_image_path(rng, user_id))}" alt="" /></p>'
        for _ in range(rng.randint(2, 5))
    )
    return "".join(parts)
