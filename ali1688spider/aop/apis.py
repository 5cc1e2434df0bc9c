"""The gateway APIs this project calls, described as data (PROTOCOL.md §3 and §5)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BusinessFailure


@dataclass(frozen=True)
class ApiSpec:
    """One gateway API: where it lives and how to talk to it.

    ``build_params`` turns an offer id (and options such as ``country``) into the business
    parameters; ``extract`` takes the decoded reply and returns the product payload, or raises
    :class:`BusinessFailure` when the reply says the call failed.
    """

    key: str
    namespace: str
    name: str
    version: int = 1
    protocol: str = "param2"
    needs_token: bool = True
    needs_signature: bool = True
    build_params: Callable[..., dict[str, object]] | None = None
    extract: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    open_ids: bool = False  # also takes an encrypted ``openOfferId`` instead of the offer id

    def url_path(self, app_key: str, protocol: str | None = None) -> str:
        """The signed part of the URL: ``param2/1/{namespace}/{name}/{appKey}``."""
        return f"{protocol or self.protocol}/{self.version}/{self.namespace}/{self.name}/{app_key}"

    def url(self, gateway_url: str, app_key: str, protocol: str | None = None) -> str:
        return f"{gateway_url.rstrip('/')}/{self.url_path(app_key, protocol)}"

    def params_for(self, offer_id: str, **options: object) -> dict[str, object]:
        if self.build_params is None:
            raise TypeError(f"{self.key} is not a product API")
        return self.build_params(offer_id, **options)

    def product_payload(self, reply: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.extract is None:
            raise TypeError(f"{self.key} is not a product API")
        return self.extract(reply)


def _said_no(body: Mapping[str, Any]) -> bool:
    return body.get("success") in (False, "false")


#: Where the APIs put a failure's code and text: each API spells them its own way.
FAILURE_CODE_KEYS = ("errorCode", "errCode", "error_code", "code", "retCode")
FAILURE_MESSAGE_KEYS = ("errMsg", "errorMsg", "errorMessage", "error_message", "message", "msg", "retMsg")


def failure_fields(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A failure's code and text, in whichever spelling the reply uses (None when absent)."""
    code = next((body[key] for key in FAILURE_CODE_KEYS if body.get(key) not in (None, "")), None)
    message = next((body[key] for key in FAILURE_MESSAGE_KEYS if body.get(key) not in (None, "")), None)
    return (str(code) if code is not None else None), (str(message) if message is not None else None)


# -- alibaba.product.get -----------------------------------------------------------------------

def _product_get_params(offer_id: str, *, scene: str | None = None, **_: object) -> dict[str, object]:
    return {"productID": int(offer_id), "webSite": "1688", "scene": scene}


def _product_get_extract(reply: Mapping[str, Any]) -> Mapping[str, Any]:
    info = reply.get("productInfo")
    if isinstance(info, Mapping) and info and not _said_no(reply):
        return reply
    code, message = failure_fields(reply)
    raise BusinessFailure(code or "no_product_info", message or "reply has no productInfo")


# -- product.search.queryProductDetail (cross-border) ------------------------------------------

def _crossborder_params(
    offer_id: str, *, country: str | None = "en", currency: str | None = None,
    out_member_id: str | None = None, **_: object,
) -> dict[str, object]:
    param: dict[str, object] = {"offerId": int(offer_id), "country": country or "en"}
    if currency:
        param["currency"] = currency
    if out_member_id:
        param["outMemberId"] = out_member_id
    return {"offerDetailParam": param}


def _crossborder_extract(reply: Mapping[str, Any]) -> Mapping[str, Any]:
    outer = reply.get("result")
    if isinstance(outer, Mapping):
        inner = outer.get("result")
        if outer.get("success") in (True, "true"):
            if isinstance(inner, Mapping) and inner:
                return inner
            raise BusinessFailure("no_result", "the reply says success but has no result")
        code, message = failure_fields(outer)
        raise BusinessFailure(code or "no_result", message or "reply has no result")
    code, message = failure_fields(reply)
    raise BusinessFailure(code or "no_result", message or "reply has no result")


# -- alibaba.fenxiao.productInfo.get and alibaba.fenxiao.product.info.get ---------------------

def _fenxiao_params(offer_id: str, **_: object) -> dict[str, object]:
    return {"offerId": int(offer_id)}


def _fenxiao_info_params(offer_id: str, **_: object) -> dict[str, object]:
    """An offer id goes as ``offerId``, an encrypted one as ``openOfferId`` (one of the two)."""
    return {"offerId": int(offer_id)} if offer_id.isdigit() else {"openOfferId": offer_id}


def _fenxiao_extract(reply: Mapping[str, Any]) -> Mapping[str, Any]:
    """The offer of a distribution reply. Its envelope is published for neither API, so every
    plausible one is read: ``{"success": true, "productInfo": {…}}``, and the same inside
    ``result`` (once or twice, as the crossborder APIs wrap), where the offer may also be the
    ``result`` itself. A ``success`` of false at any level, or no offer, is a failure with the
    code and text of the innermost level that has them."""
    levels: list[Mapping[str, Any]] = []
    body: Any = reply
    while isinstance(body, Mapping) and len(levels) < 3:
        levels.append(body)
        info = body.get("productInfo")
        if _said_no(body):
            break
        if isinstance(info, Mapping) and info:
            return info
        inner = body.get("result")
        if isinstance(inner, Mapping) and any(
                key in inner for key in ("productID", "productId", "offerId", "openOfferId")):
            return inner
        body = inner
    for level in reversed(levels):
        code, message = failure_fields(level)
        if code or message:
            raise BusinessFailure(code or "no_product_info", message or "reply has no productInfo")
    raise BusinessFailure("no_product_info", "reply has no productInfo")


PRODUCT_GET = ApiSpec(
    key="product.get", namespace="com.alibaba.product", name="alibaba.product.get",
    build_params=_product_get_params, extract=_product_get_extract,
)
CROSSBORDER = ApiSpec(
    key="crossborder", namespace="com.alibaba.fenxiao.crossborder",
    name="product.search.queryProductDetail",
    build_params=_crossborder_params, extract=_crossborder_extract,
)
FENXIAO = ApiSpec(
    key="fenxiao", namespace="com.alibaba.fenxiao", name="alibaba.fenxiao.productInfo.get",
    build_params=_fenxiao_params, extract=_fenxiao_extract,
)
FENXIAO_INFO = ApiSpec(
    key="fenxiao.info", namespace="com.alibaba.fenxiao", name="alibaba.fenxiao.product.info.get",
    build_params=_fenxiao_info_params, extract=_fenxiao_extract, open_ids=True,
)
GET_TOKEN = ApiSpec(
    key="getToken", namespace="system.oauth2", name="getToken", protocol="http",
    needs_token=False, needs_signature=False,
)
POSTPONE_TOKEN = ApiSpec(
    key="postponeToken", namespace="system.oauth2", name="postponeToken",
    needs_token=False, needs_signature=False,
)

#: The product-detail APIs by the names users pass as ``-a api=…``.
PRODUCT_APIS: dict[str, ApiSpec] = {spec.key: spec for spec in (PRODUCT_GET, CROSSBORDER, FENXIAO, FENXIAO_INFO)}


def product_api(name: str) -> ApiSpec:
    """Look up a product API by its short name (``product.get``, ``crossborder``, ``fenxiao``,
    ``fenxiao.info``)."""
    try:
        return PRODUCT_APIS[name]
    except KeyError:
        choices = ", ".join(PRODUCT_APIS)
        raise ValueError(f"unknown api {name!r}: choose one of {choices}") from None
