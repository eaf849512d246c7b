"""Sites: detections grouped by place, each one through time; trends by site."""
import review.ui.sites

review.ui.sites.page()
