"""Vision: from a frame to per-student observations (one `FrameAnalyser` for files and the camera).

students (people + keypoints, YOLO11n-pose) -> tracking (student ids) -> faces inside each student's
head region -> per-face stages (head pose and eyes from the face mesh, emotion, identity) -> per-student
body state (head down, head turned, hand raised, posture). Records: `core.vision.records`.
"""
