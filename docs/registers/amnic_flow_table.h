/* flow_table register block: generated from its description; do not edit. */
#ifndef AMNIC_FLOW_TABLE_H
#define AMNIC_FLOW_TABLE_H

#define AMNIC_FLOW_TABLE_TYPE_ID_VALUE                   0x464C4F57u
#define AMNIC_FLOW_TABLE_VERSION_VALUE                   0x00010000u
#define AMNIC_FLOW_TABLE_SIZE_VALUE                      0x100u

#define AMNIC_FLOW_TABLE_TYPE_ID_OFFSET                  0x000u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_TYPE_ID_RESET                   0x464C4F57u
#define AMNIC_FLOW_TABLE_VERSION_OFFSET                  0x004u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_VERSION_RESET                   0x10000u
#define AMNIC_FLOW_TABLE_SIZE_OFFSET                     0x008u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_SIZE_RESET                      0x100u
#define AMNIC_FLOW_TABLE_ENTRIES_OFFSET                  0x010u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_ENTRIES_RESET                   0x0u
#define AMNIC_FLOW_TABLE_WAYS_OFFSET                     0x014u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_WAYS_RESET                      0x0u
#define AMNIC_FLOW_TABLE_KEY_WIDTH_OFFSET                0x018u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_KEY_WIDTH_RESET                 0x0u
#define AMNIC_FLOW_TABLE_ACTION_WIDTH_OFFSET             0x01Cu  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_ACTION_WIDTH_RESET              0x0u
#define AMNIC_FLOW_TABLE_COUNTER_WIDTHS_OFFSET           0x020u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_COUNTER_WIDTHS_RESET            0x0u
#define AMNIC_FLOW_TABLE_COUNTER_WIDTHS_PACKETS_SHIFT    0
#define AMNIC_FLOW_TABLE_COUNTER_WIDTHS_PACKETS_MASK     0xFFu
#define AMNIC_FLOW_TABLE_COUNTER_WIDTHS_BYTES_SHIFT      8
#define AMNIC_FLOW_TABLE_COUNTER_WIDTHS_BYTES_MASK       0xFF00u
#define AMNIC_FLOW_TABLE_COUNTER_WIDTHS_LAST_HIT_SHIFT   16
#define AMNIC_FLOW_TABLE_COUNTER_WIDTHS_LAST_HIT_MASK    0xFF0000u
#define AMNIC_FLOW_TABLE_HASH_SEED_OFFSET                0x024u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_HASH_SEED_RESET                 0x0u
#define AMNIC_FLOW_TABLE_TIME_OFFSET                     0x028u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_TIME_RESET                      0x0u
#define AMNIC_FLOW_TABLE_COMMAND_OFFSET                  0x030u  /* W1S, 32 bit */
#define AMNIC_FLOW_TABLE_COMMAND_RESET                   0x0u
#define AMNIC_FLOW_TABLE_COMMAND_WRITE_SHIFT             0
#define AMNIC_FLOW_TABLE_COMMAND_WRITE_MASK              0x1u
#define AMNIC_FLOW_TABLE_COMMAND_UPDATE_SHIFT            1
#define AMNIC_FLOW_TABLE_COMMAND_UPDATE_MASK             0x2u
#define AMNIC_FLOW_TABLE_COMMAND_CLEAR_SHIFT             2
#define AMNIC_FLOW_TABLE_COMMAND_CLEAR_MASK              0x4u
#define AMNIC_FLOW_TABLE_COMMAND_READ_SHIFT              3
#define AMNIC_FLOW_TABLE_COMMAND_READ_MASK               0x8u
#define AMNIC_FLOW_TABLE_STATUS_OFFSET                   0x034u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_STATUS_RESET                    0x0u
#define AMNIC_FLOW_TABLE_STATUS_BUSY_SHIFT               0
#define AMNIC_FLOW_TABLE_STATUS_BUSY_MASK                0x1u
#define AMNIC_FLOW_TABLE_STATUS_REJECTED_SHIFT           1
#define AMNIC_FLOW_TABLE_STATUS_REJECTED_MASK            0x2u
#define AMNIC_FLOW_TABLE_INDEX_OFFSET                    0x038u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_INDEX_RESET                     0x0u
#define AMNIC_FLOW_TABLE_ACTION_0_OFFSET                 0x040u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_ACTION_0_RESET                  0x0u
#define AMNIC_FLOW_TABLE_ACTION_1_OFFSET                 0x044u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_ACTION_1_RESET                  0x0u
#define AMNIC_FLOW_TABLE_ACTION_2_OFFSET                 0x048u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_ACTION_2_RESET                  0x0u
#define AMNIC_FLOW_TABLE_ACTION_3_OFFSET                 0x04Cu  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_ACTION_3_RESET                  0x0u
#define AMNIC_FLOW_TABLE_KEY_0_OFFSET                    0x050u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_KEY_0_RESET                     0x0u
#define AMNIC_FLOW_TABLE_KEY_1_OFFSET                    0x054u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_KEY_1_RESET                     0x0u
#define AMNIC_FLOW_TABLE_KEY_2_OFFSET                    0x058u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_KEY_2_RESET                     0x0u
#define AMNIC_FLOW_TABLE_KEY_3_OFFSET                    0x05Cu  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_KEY_3_RESET                     0x0u
#define AMNIC_FLOW_TABLE_KEY_4_OFFSET                    0x060u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_KEY_4_RESET                     0x0u
#define AMNIC_FLOW_TABLE_KEY_5_OFFSET                    0x064u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_KEY_5_RESET                     0x0u
#define AMNIC_FLOW_TABLE_KEY_6_OFFSET                    0x068u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_KEY_6_RESET                     0x0u
#define AMNIC_FLOW_TABLE_KEY_7_OFFSET                    0x06Cu  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_KEY_7_RESET                     0x0u
#define AMNIC_FLOW_TABLE_KEY_8_OFFSET                    0x070u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_KEY_8_RESET                     0x0u
#define AMNIC_FLOW_TABLE_KEY_9_OFFSET                    0x074u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_KEY_9_RESET                     0x0u
#define AMNIC_FLOW_TABLE_KEY_10_OFFSET                   0x078u  /* RW, 32 bit */
#define AMNIC_FLOW_TABLE_KEY_10_RESET                    0x0u
#define AMNIC_FLOW_TABLE_READ_STATUS_OFFSET              0x080u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_STATUS_RESET               0x0u
#define AMNIC_FLOW_TABLE_READ_STATUS_VALID_SHIFT         0
#define AMNIC_FLOW_TABLE_READ_STATUS_VALID_MASK          0x1u
#define AMNIC_FLOW_TABLE_READ_LAST_HIT_OFFSET            0x084u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_LAST_HIT_RESET             0x0u
#define AMNIC_FLOW_TABLE_READ_PACKETS_OFFSET             0x088u  /* RO, 64 bit */
#define AMNIC_FLOW_TABLE_READ_PACKETS_HI_OFFSET          0x08Cu
#define AMNIC_FLOW_TABLE_READ_PACKETS_RESET              0x0ull
#define AMNIC_FLOW_TABLE_READ_BYTES_OFFSET               0x090u  /* RO, 64 bit */
#define AMNIC_FLOW_TABLE_READ_BYTES_HI_OFFSET            0x094u
#define AMNIC_FLOW_TABLE_READ_BYTES_RESET                0x0ull
#define AMNIC_FLOW_TABLE_READ_ACTION_0_OFFSET            0x0A0u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_ACTION_0_RESET             0x0u
#define AMNIC_FLOW_TABLE_READ_ACTION_1_OFFSET            0x0A4u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_ACTION_1_RESET             0x0u
#define AMNIC_FLOW_TABLE_READ_ACTION_2_OFFSET            0x0A8u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_ACTION_2_RESET             0x0u
#define AMNIC_FLOW_TABLE_READ_ACTION_3_OFFSET            0x0ACu  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_ACTION_3_RESET             0x0u
#define AMNIC_FLOW_TABLE_READ_KEY_0_OFFSET               0x0B0u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_KEY_0_RESET                0x0u
#define AMNIC_FLOW_TABLE_READ_KEY_1_OFFSET               0x0B4u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_KEY_1_RESET                0x0u
#define AMNIC_FLOW_TABLE_READ_KEY_2_OFFSET               0x0B8u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_KEY_2_RESET                0x0u
#define AMNIC_FLOW_TABLE_READ_KEY_3_OFFSET               0x0BCu  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_KEY_3_RESET                0x0u
#define AMNIC_FLOW_TABLE_READ_KEY_4_OFFSET               0x0C0u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_KEY_4_RESET                0x0u
#define AMNIC_FLOW_TABLE_READ_KEY_5_OFFSET               0x0C4u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_KEY_5_RESET                0x0u
#define AMNIC_FLOW_TABLE_READ_KEY_6_OFFSET               0x0C8u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_KEY_6_RESET                0x0u
#define AMNIC_FLOW_TABLE_READ_KEY_7_OFFSET               0x0CCu  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_KEY_7_RESET                0x0u
#define AMNIC_FLOW_TABLE_READ_KEY_8_OFFSET               0x0D0u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_KEY_8_RESET                0x0u
#define AMNIC_FLOW_TABLE_READ_KEY_9_OFFSET               0x0D4u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_KEY_9_RESET                0x0u
#define AMNIC_FLOW_TABLE_READ_KEY_10_OFFSET              0x0D8u  /* RO, 32 bit */
#define AMNIC_FLOW_TABLE_READ_KEY_10_RESET               0x0u

#endif /* AMNIC_FLOW_TABLE_H */
