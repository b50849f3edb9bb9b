"""Plain-text rendering of the kinds' .txt templates (titles, bodies, text emails, SMS): no HTML
escaping — the text is stored and sent as is, and escaped wherever it is shown in HTML."""

from django.template import Context
from django.template.loader import select_template


def render_plain(template_names, context):
    template = select_template(template_names if isinstance(template_names, list | tuple) else [template_names])
    return template.template.render(Context(context, autoescape=False))
