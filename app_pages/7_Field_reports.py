"""Field reports: what people on the ground saw, with photos."""
import review.ui.field_reports

review.ui.field_reports.page()
