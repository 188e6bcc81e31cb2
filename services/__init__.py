"""platewatch services.

OpenCV refuses to decode a picture of more pixels than `OPENCV_IO_MAX_IMAGE_PIXELS`, which it reads
once, when it loads; its default (2^30 pixels, 3 GB as BGR) lets a small file claim gigabytes. It is
set here, before any service module imports cv2, as a backstop to the header checks of
`services/common/imagefiles.py`: to the largest picture any of our tools accepts (`platewatch
recognize`'s 400 Mpx JPEG, which it decodes reduced). A value set in the environment is kept.
"""

import os

os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(400_000_000))
