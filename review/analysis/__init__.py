"""Analysis: what the reviewed detections add up to.

Owns mined area per period and region with honest uncertainty (trends), period labels
(periods), detections grouped by place across periods (sites, with their geometry in
site_grouping) and their trend (site_trends), random samples for an estimate (sampling),
areas of interest (areas) and the data the Map draws (map_layers).

May import: the root modules, detection, judging and review_imagery.
"""
