def site(request):
    """What every page needs: the site's name and the CSP nonce under the name django-leaflet uses."""
    from django.conf import settings

    nonce = getattr(request, "csp_nonce", "")
    return {"SITE_NAME": settings.SITE_NAME, "csp_nonce": nonce, "CSP_NONCE": nonce}
