"""The 1688 Open Platform protocol, with no Scrapy import.

signing (parameter encoding + ``_aop_signature``), the API descriptions, the response
classifier, the OAuth2 token client and stores, offer references and normalisation.
"""

from .apis import CROSSBORDER, FENXIAO, GET_TOKEN, POSTPONE_TOKEN, PRODUCT_APIS, PRODUCT_GET, ApiSpec, product_api
from .classify import Classification, Outcome, classify_response, decode_json
from .errors import AopError, BusinessFailure, InvalidOfferRef, TokenError
from .refs import offer_url, parse_offer_ref
from .signing import AUTH_PARAMS, encode_params, encode_value, sign, sign_encoded
from .tokens import FileTokenStore, MemoryTokenStore, Token, TokenCipher, TokenClient, TokenStore, mask

__all__ = [
    "AUTH_PARAMS", "CROSSBORDER", "FENXIAO", "GET_TOKEN", "POSTPONE_TOKEN", "PRODUCT_APIS", "PRODUCT_GET",
    "AopError", "ApiSpec", "BusinessFailure", "Classification", "FileTokenStore",
    "InvalidOfferRef", "MemoryTokenStore", "Outcome", "Token", "TokenCipher", "TokenClient", "TokenError", "TokenStore",
    "classify_response", "decode_json", "encode_params", "encode_value", "mask", "offer_url",
    "parse_offer_ref", "product_api", "sign", "sign_encoded",
]
