from .core import area

rectangle_area = area
