"""The web app's entry point: `streamlit run ui/app.py` (or `guideline-qa serve`) shows both pages."""

from __future__ import annotations

import streamlit as st

from ui import services

# An emoji favicon is drawn inline; a :material/...: one (also the default, taken from the first page's
# icon) is fetched from fonts.gstatic.com, which a hospital network may block.
st.set_page_config(page_title="Guideline Q&A", page_icon="🩺", layout="centered")


def login_required() -> bool:
    """True when .streamlit/secrets.toml has an [auth] section: Streamlit's OIDC single sign-on is on."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - StreamlitSecretNotFoundError: no secrets file, no sign-on
        return False


if login_required():
    if not getattr(st.user, "is_logged_in", False):
        st.title("Guideline Q&A")
        st.button("Sign in with your organisation account", on_click=st.login, type="primary")
        st.stop()
    st.sidebar.button("Sign out", on_click=st.logout)

page = st.navigation([
    st.Page("page_ask.py", title="Ask", icon=":material/quick_reference_all:", default=True),
    st.Page("page_knowledge.py", title="Knowledge team", icon=":material/library_books:", url_path="knowledge"),
])
try:
    page.run()
except Exception as exc:  # noqa: BLE001 - the page shows one line, the server log keeps the traceback
    st.error(services.error_line(exc), icon=":material/error:")
