# Copyright (c) mmselfdet contributors. All rights reserved.
