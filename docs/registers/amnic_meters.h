/* meters register block: generated from its description; do not edit. */
#ifndef AMNIC_METERS_H
#define AMNIC_METERS_H

#define AMNIC_METERS_TYPE_ID_VALUE                       0x4D455452u
#define AMNIC_METERS_VERSION_VALUE                       0x00010000u
#define AMNIC_METERS_SIZE_VALUE                          0x40u

#define AMNIC_METERS_TYPE_ID_OFFSET                      0x000u  /* RO, 32 bit */
#define AMNIC_METERS_TYPE_ID_RESET                       0x4D455452u
#define AMNIC_METERS_VERSION_OFFSET                      0x004u  /* RO, 32 bit */
#define AMNIC_METERS_VERSION_RESET                       0x10000u
#define AMNIC_METERS_SIZE_OFFSET                         0x008u  /* RO, 32 bit */
#define AMNIC_METERS_SIZE_RESET                          0x40u
#define AMNIC_METERS_METERS_OFFSET                       0x00Cu  /* RO, 32 bit */
#define AMNIC_METERS_METERS_RESET                        0x0u
#define AMNIC_METERS_INDEX_OFFSET                        0x010u  /* RW, 32 bit */
#define AMNIC_METERS_INDEX_RESET                         0x0u
#define AMNIC_METERS_COMMAND_OFFSET                      0x014u  /* W1S, 32 bit */
#define AMNIC_METERS_COMMAND_RESET                       0x0u
#define AMNIC_METERS_COMMAND_WRITE_SHIFT                 0
#define AMNIC_METERS_COMMAND_WRITE_MASK                  0x1u
#define AMNIC_METERS_COMMAND_READ_SHIFT                  1
#define AMNIC_METERS_COMMAND_READ_MASK                   0x2u
#define AMNIC_METERS_RATE_OFFSET                         0x018u  /* RW, 32 bit */
#define AMNIC_METERS_RATE_RESET                          0x0u
#define AMNIC_METERS_BURST_OFFSET                        0x01Cu  /* RW, 32 bit */
#define AMNIC_METERS_BURST_RESET                         0x0u
#define AMNIC_METERS_BURST_BYTES_SHIFT                   0
#define AMNIC_METERS_BURST_BYTES_MASK                    0xFFFFFFu
#define AMNIC_METERS_CONTROL_OFFSET                      0x020u  /* RW, 32 bit */
#define AMNIC_METERS_CONTROL_RESET                       0x0u
#define AMNIC_METERS_CONTROL_ENABLE_SHIFT                0
#define AMNIC_METERS_CONTROL_ENABLE_MASK                 0x1u
#define AMNIC_METERS_CONTROL_MODE_SHIFT                  1
#define AMNIC_METERS_CONTROL_MODE_MASK                   0x2u
#define AMNIC_METERS_TOKENS_OFFSET                       0x028u  /* RO, 64 bit */
#define AMNIC_METERS_TOKENS_HI_OFFSET                    0x02Cu
#define AMNIC_METERS_TOKENS_RESET                        0x0ull
#define AMNIC_METERS_GREEN_PACKETS_OFFSET                0x030u  /* RO, 64 bit */
#define AMNIC_METERS_GREEN_PACKETS_HI_OFFSET             0x034u
#define AMNIC_METERS_GREEN_PACKETS_RESET                 0x0ull
#define AMNIC_METERS_RED_PACKETS_OFFSET                  0x038u  /* RO, 64 bit */
#define AMNIC_METERS_RED_PACKETS_HI_OFFSET               0x03Cu
#define AMNIC_METERS_RED_PACKETS_RESET                   0x0ull

#endif /* AMNIC_METERS_H */
