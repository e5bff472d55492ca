from anchor_orm.frontends.implementations.cookie import CookieParameters, SameSiteEnum, SessionCookie

__all__ = ["CookieParameters", "SameSiteEnum", "SessionCookie"]
