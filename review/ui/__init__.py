"""Everything Streamlit, one module per page plus the widgets they share (common).

`app.py` and each `app_pages/N_Name.py` call one function here: `review.ui.home.page()` and
so on. Only this package imports streamlit; it holds no SQL, geometry, arithmetic or
file writing: those live in review/ and are called from here. Domain errors
(ReviewError) raised in review/ become st.error messages here; nothing else is caught,
so real bugs still show their cause.

Besides the pages: `common` (what every page shares) and `site_views` (the site map and
timeline the Sites page draws).

May import: the root modules and every domain wing (detection, judging, review_imagery,
analysis, publishing, learning); never review.cli.
"""
